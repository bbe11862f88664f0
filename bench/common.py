"""Shared pieces of the benchmarks: equal-size configs, cached training runs, data subsets and result tables.

Benchmarks are scripts, not tests: each prints its tables and writes them to `bench/results/<name>.md`.
Everything runs on CPU with the bundled data; trained checkpoints are cached under `bench/work/` (git-ignored).
"""
from __future__ import annotations
import dataclasses, functools, json, os, platform, random, resource, sys, threading, time
from pathlib import Path

import pandas as pd
import torch
from tqdm.auto import tqdm

from explicitlm.data import bundled_data_dir
from explicitlm.data import load_local_tokenizer
from explicitlm.minimind import BaselineLM, MemoryLM
from explicitlm.train import REFERENCE_RECIPE, TrainConfig, cpu_demo_config, load_trained, model_config_conflicts, pretrain

ROOT = Path(__file__).resolve().parent
WORK, RESULTS = ROOT / "work", ROOT / "results"
DATA = bundled_data_dir()

# One training recipe for every model in the benchmarks: 24 counterfactual fact statements + 8 pretraining texts per
# batch, the same steps and schedule. A model without a bank gets the same statements with their true objects.
RECIPE = dict(**REFERENCE_RECIPE, eval_every=500, eval_batches=8, save_every=10**9, log_every=20, monitor_generations=0)


def rss_mib() -> float:
    "Current resident memory of this process (Linux /proc), MiB."
    with open("/proc/self/statm") as f: return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def tensor_memory_mib(prof, phase: str = "train") -> tuple[float, float]:
    """(MiB of tensors live when the `phase` record_function began, MiB at their peak over the whole run), from the memory
    events of a `torch.profiler.profile(profile_memory=True)` run."""
    events = prof.profiler.kineto_results.events()
    start = min(e.start_ns() for e in events if e.name() == phase)
    live = peak = at_start = 0
    for e in sorted((e for e in events if e.name() == "[memory]"), key=lambda e: e.start_ns()):
        if e.start_ns() >= start and not at_start: at_start = live
        live += e.nbytes(); peak = max(peak, live)
    return at_start / 2**20, peak / 2**20


class PeakRSS:
    "Peak resident memory of this process (MiB) while the `with` block runs, sampled every `every` seconds."
    def __init__(self, every: float = 0.001): self.every = every
    def __enter__(self):
        self.start = self.peak = rss_mib()
        self._done = threading.Event()
        def sample():
            while not self._done.is_set(): self.peak = max(self.peak, rss_mib()); time.sleep(self.every)
        self._t = threading.Thread(target=sample, daemon=True); self._t.start()
        return self
    def __exit__(self, *exc): self._done.set(); self._t.join()


def progress(items, desc: str, **kwargs):
    """A progress bar over `items` while a person watches (stderr is a terminal); none when the output goes to a log,
    which gets the rows each benchmark prints."""
    return tqdm(items, desc=desc, disable=None, **kwargs)

ON_TERMINAL = sys.stderr.isatty()       # training runs show their own bar on a terminal (TrainConfig.progress)


def n_params(model: torch.nn.Module) -> int:
    "Number of parameters (tied weights counted once)."
    return sum(p.numel() for p in model.parameters())


def equal_size_configs(tok, **overrides):
    """(memory config, baseline config): the same backbone (`overrides` apply to both), the memory model's `fusion_dim`
    (a multiple of 8) chosen to match the baseline's size."""
    base = cpu_demo_config(tok, **overrides)
    target = n_params(BaselineLM(base))
    size = lambda fd: n_params(MemoryLM(cpu_demo_config(tok, **{**overrides, "fusion_dim": fd})))
    lo, hi = 1, 8 * base.dim                        # bisect (size grows with fusion_dim) for the first size >= target
    while lo < hi:
        mid = (lo + hi) // 2
        if size(8 * mid) < target: lo = mid + 1
        else: hi = mid
    fd = min([8 * m for m in (lo - 1, lo) if m >= 1], key=lambda fd: abs(size(fd) - target))
    return cpu_demo_config(tok, **{**overrides, "fusion_dim": fd}), base


def _subset_lines(src: Path, keep, name: str) -> Path:
    dst = WORK / name
    if not dst.exists():
        lines = [l for l in Path(src).read_text().splitlines() if l.strip()]
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text("\n".join(l for l in lines if keep(l)) + "\n")
    return dst

def subset_jsonl(src: Path, fraction: float, seed: int = 0) -> Path:
    "A seeded `fraction` of the lines of `src`, written once under bench/work/."
    if fraction >= 1: return Path(src)
    n = len([l for l in Path(src).read_text().splitlines() if l.strip()])
    chosen = set(random.Random(seed).sample(range(n), max(1, int(n * fraction))))
    counter = iter(range(n))
    return _subset_lines(src, lambda l: next(counter) in chosen, f"{Path(src).stem}_{int(fraction * 100)}pct_seed{seed}.jsonl")

def subset_facts(src: Path, fraction: float, seed: int = 0) -> Path:
    "The facts of a seeded `fraction` of the train subjects (bank-only facts all kept), written once under bench/work/."
    if fraction >= 1: return Path(src)
    facts = [json.loads(l) for l in Path(src).read_text().splitlines() if l.strip()]
    subjects = sorted({f["subject"] for f in facts if f["split"] == "train"})
    kept = set(random.Random(seed).sample(subjects, max(1, int(len(subjects) * fraction))))
    return _subset_lines(src, lambda l: (f := json.loads(l))["split"] != "train" or f["subject"] in kept,
                         f"facts_{int(fraction * 100)}pct_subjects_seed{seed}.jsonl")


def trained(name: str, model_type: str, mcfg, steps: int, seed: int = 0, retrain: bool = False, **recipe):
    "Train (or load the cached checkpoint of) a model with `RECIPE` + `recipe`; returns (model, seconds, metrics DataFrame)."
    out = WORK / name
    ck = out / f"checkpoint-{steps}"
    tok = load_local_tokenizer()
    if ck.exists() and (out / "bench_meta.json").exists() and not retrain:
        meta = json.loads((out / "bench_meta.json").read_text())
        defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
        same = lambda r: {**defaults, **{k: v for k, v in r.items() if k in defaults}}
        if same(meta["recipe"]) == same({**RECIPE, **recipe}) and meta["model_type"] == model_type:
            differ = model_config_conflicts(ck, mcfg)
            if not differ: return load_trained(ck, tok), meta["train_seconds"], pd.read_csv(out / "metrics.csv")
            print(f"{out}: trained with another model config than {name}'s ({', '.join(differ)}); training it again")
        else: print(f"{out}: trained with another recipe than {name}'s; training it again")
    tc = TrainConfig(out_dir=str(out), model_type=model_type, max_steps=steps, seed=seed, progress=ON_TERMINAL, overwrite=True,
                     cache_dir=str(WORK / "cache"), **{**RECIPE, **recipe})
    t0 = time.time()
    res = pretrain(mcfg, tc)
    secs = time.time() - t0
    (out / "bench_meta.json").write_text(json.dumps({"train_seconds": secs, "steps": steps, "model_type": model_type,
                                                     "recipe": {**RECIPE, **recipe}}))
    return load_trained(res.checkpoint_dir, tok), secs, pd.read_csv(res.metrics_path)


def markdown_table(df: pd.DataFrame) -> str:
    "A GitHub-markdown table of `df` (floats with 3 decimals), without extra dependencies."
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    rows = [list(map(str, df.columns))] + [[fmt(v) for v in r] for r in df.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])] + ["| " + " | ".join(r) + " |" for r in rows[1:]])


@functools.cache
def code_version() -> str:
    "The commit of the `explicitlm` package being measured (`+changes` when its checkout has uncommitted edits), read once."
    import subprocess, explicitlm
    where = Path(explicitlm.__file__).parent
    git = lambda *a: subprocess.run(["git", "-C", str(where), *a], capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD")
    if not commit: return "explicitlm outside git"
    return f"explicitlm {commit}{'+changes' if git('status', '--porcelain', '--', '.') else ''}"


code_version()                 # read when the benchmark starts: a run labels the code it imported, not later edits


def machine() -> str:
    "One line about where and on what the numbers were measured."
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads, python {platform.python_version()}, {code_version()}")


def write_result(name: str, title: str, table: pd.DataFrame, notes: list[str], settings: dict,
                 extra: list[tuple[str, pd.DataFrame]] = ()) -> Path:
    "Print `table` (and `extra` titled tables) and write them with `notes` and `settings` to bench/results/<name>.md."
    RESULTS.mkdir(parents=True, exist_ok=True)
    md = [f"# {title}", "", f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {machine()}._", "",
          markdown_table(table), ""]
    for t, df in extra: md += [f"## {t}", "", markdown_table(df), ""]
    if notes: md += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    md += ["## Settings", "", "```json", json.dumps(settings, indent=1, default=str), "```", ""]
    path = RESULTS / f"{name}.md"
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(md)); os.replace(tmp, path)
    print(f"\n{title}\n"); print(table.to_string(index=False))
    for t, df in extra: print(f"\n{t}\n{df.to_string(index=False)}")
    print(f"\nwritten to {path}")
    return path
