"""Shared pieces of the benchmarks: equal-size configs, cached training runs, data subsets and result tables.

Benchmarks are scripts, not tests: each prints one table and writes it to `bench/results/<name>.md`.
Everything runs on CPU with the bundled data; trained checkpoints are cached under `bench/work/` (git-ignored),
so `knowledge_editing.py` reuses what `fact_recall.py` trained.
"""
from __future__ import annotations
import json, os, platform, random, sys, time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from explicitlm.corpus import bundled_data_dir
from explicitlm.data import load_local_tokenizer
from explicitlm.minimind import BaselineLM, MemoryLM
from explicitlm.train import TrainConfig, cpu_demo_config, load_trained, pretrain

ROOT = Path(__file__).resolve().parent
WORK, RESULTS = ROOT / "work", ROOT / "results"
DATA = bundled_data_dir()

def retrieval_pairs_file() -> Path:
    "Cloze prompt → bank sentence pairs of the *train* facts only (bank-only facts are never used for supervision)."
    dst = WORK / "retrieval_pairs_train.jsonl"
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        facts = [json.loads(l) for l in (DATA / "facts.jsonl").read_text().splitlines() if l.strip()]
        dst.write_text("".join(json.dumps({"prompt": f["prompt"], "sentence": f["sentence"]}) + "\n"
                               for f in facts if f["split"] == "train"))
    return dst


# One training recipe for every model in the benchmarks (same steps, batch and schedule for memory and baseline).
# The memory model also gets retrieval supervision on train facts (text the baseline sees too, in the pretraining data);
# the baseline has no bank and ignores it.
RECIPE = dict(batch_size=16, learning_rate=2e-3, warmup_steps=30, eval_every=200, eval_batches=8, save_every=10**9,
              log_every=20, monitor_generations=0, recluster_every=200, retrieval_pairs=str(retrieval_pairs_file()))


def n_params(model: torch.nn.Module) -> int:
    "Number of parameters (tied weights counted once)."
    return sum(p.numel() for p in model.parameters())


def equal_size_configs(tok, **overrides):
    "(memory config, baseline config) with the same backbone and `fusion_dim` chosen so both have ~equal parameters."
    base = cpu_demo_config(tok, **overrides)
    target = n_params(BaselineLM(base))
    best = None
    for fd in range(8, 8 * base.dim + 1, 8):
        n = n_params(MemoryLM(cpu_demo_config(tok, fusion_dim=fd, **overrides)))
        if best is None or abs(n - target) < abs(best[1] - target): best = (fd, n)
        if n > target: break
    return cpu_demo_config(tok, fusion_dim=best[0], **overrides), base


def subset_jsonl(src: Path, fraction: float, seed: int = 0) -> Path:
    "A seeded `fraction` of the lines of `src`, written once under bench/work/."
    if fraction >= 1: return Path(src)
    dst = WORK / f"{Path(src).stem}_{int(fraction * 100)}pct_seed{seed}.jsonl"
    if not dst.exists():
        lines = [l for l in Path(src).read_text().splitlines() if l.strip()]
        keep = sorted(random.Random(seed).sample(range(len(lines)), max(1, int(len(lines) * fraction))))
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("\n".join(lines[i] for i in keep) + "\n")
    return dst


def trained(name: str, model_type: str, mcfg, steps: int, data_path: Path | None = None, seed: int = 0,
            retrain: bool = False, **recipe):
    "Train (or load the cached checkpoint of) a model; returns (model, seconds spent training, metrics DataFrame)."
    out = WORK / name
    ck = out / f"checkpoint-{steps}"
    tok = load_local_tokenizer()
    if ck.exists() and not retrain:
        meta = json.loads((out / "bench_meta.json").read_text())
        return load_trained(ck, tok), meta["train_seconds"], pd.read_csv(out / "metrics.csv")
    tc = TrainConfig(out_dir=str(out), model_type=model_type, max_steps=steps, seed=seed, progress=False,
                     data_path=str(data_path) if data_path else None, cache_dir=str(WORK / "cache"), **{**RECIPE, **recipe})
    t0 = time.time()
    res = pretrain(mcfg, tc)
    secs = time.time() - t0
    (out / "bench_meta.json").write_text(json.dumps({"train_seconds": secs, "steps": steps, "model_type": model_type}))
    return load_trained(res.checkpoint_dir, tok), secs, pd.read_csv(res.metrics_path)


def markdown_table(df: pd.DataFrame) -> str:
    "A GitHub-markdown table of `df` (floats with 3 decimals), without extra dependencies."
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    rows = [list(map(str, df.columns))] + [[fmt(v) for v in r] for r in df.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + ["| " + " | ".join(r) + " |" for r in rows[1:]])


def machine() -> str:
    "One line about where the numbers were measured."
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads, python {platform.python_version()}")


def write_result(name: str, title: str, table: pd.DataFrame, notes: list[str], settings: dict) -> Path:
    "Print `table` and write it with `notes` and `settings` to bench/results/<name>.md."
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}._", "",
          markdown_table(table), ""]
    if notes: md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md += ["## Settings", "", "```json", json.dumps(settings, indent=1, default=str), "```", ""]
    path = RESULTS / f"{name}.md"
    path.write_text("\n".join(md))
    print(f"\n{title}\n"); print(table.to_string(index=False)); print(f"\nwritten to {path}")
    return path
