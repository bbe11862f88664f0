"""Benchmark — training with the seeds' bank shape (1,048,576 entries × 16 tokens) on CPU.

The reference model (`bench/knowledge.py`'s "ours", 1,500 steps with a 4,096-entry bank) is trained on with a bank of
`knowledge_num` entries: the corpus's 2,772 facts, canonical facts about generated people, cities and companies
(`bench/scale.py`'s filler), and `--free` empty slots where the fact stream writes its new subjects and distractors.
The recipe is the reference one (counterfactual fact statements with the bank overlay, teacher forcing, retrieval
loss) at a lower learning rate. Reported: training tokens/s (against the same recipe with the 4,096-entry bank in the
same run), peak resident memory, the bank's bytes (token ids in the narrowest dtype), the cell index's and key caches' bytes, and
the knowledge numbers of `bench/scale.py` before and after training at that size.

    python bench/scale_train.py                          # 1M entries, 300 steps (~30 min on 2 CPU cores)
    python bench/scale_train.py --size 65536 --steps 100 # a smaller check
"""
import argparse, json, sys, time
from pathlib import Path
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, ON_TERMINAL, RECIPE, WORK, PeakRSS, progress, write_result
from scale import STEPS, filler_sentences, grown, measure, reference_model
from explicitlm.bank import MemoryBank
from explicitlm.data import PretrainDataset
from explicitlm.gate import ProductKeyGate
from explicitlm.train import TrainConfig, fact_stream, fit


def train_at_size(model, tok, steps: int, out: Path, lr: float, recluster_every: int) -> dict:
    "Train `model` (its own bank) `steps` steps of the reference recipe: tokens/s, wall time, peak resident memory."
    cfg = TrainConfig(out_dir=str(out), max_steps=steps, seed=1, progress=ON_TERMINAL, overwrite=True, cache_dir=str(WORK / "cache"),
                      **{**RECIPE, "learning_rate": lr, "warmup_steps": 10, "eval_every": 10**9, "eval_batches": 2,
                         "recluster_every": recluster_every, "log_every": 10})
    texts = PretrainDataset(DATA / "pretrain.jsonl", tok, model.config.max_seq_len)
    stream = fact_stream(cfg, tok, model.memory_bank, texts.texts, True, model.config.max_seq_len)
    eval_ds = PretrainDataset(DATA / "pretrain_eval.jsonl", tok, model.config.max_seq_len)
    t0 = time.time()
    with PeakRSS(every=0.005) as peak: fit(model, stream, eval_ds, cfg, tok)
    wall = time.time() - t0
    m = pd.read_csv(out / "metrics.csv")
    m = m[m.kind == "train"]
    return dict(steps=steps, train_wall_s=wall, tokens_per_s=float(m.tokens_per_sec.iloc[1 if len(m) > 1 else 0:].median()),   # (the first window warms up)
                rss_before_mib=peak.start, peak_rss_mib=peak.peak, final_train_loss=float(m.train_loss.iloc[-1]))


def index_bytes(model, key_caches: bool) -> int:
    "Bytes of every gate's key cache (`key_caches`) or cell index (derived from the bank; rebuilt, not saved)."
    gates = [g for g in model.modules() if isinstance(g, ProductKeyGate)]
    parts = lambda g: (g.key_cache,) if key_caches else (g.entry_cell, g.cell_order, g.cell_starts)
    return sum(t.numel() * t.element_size() for g in gates for t in parts(g) if t is not None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=1048576)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--free", type=int, default=16384, help="empty slots for the fact stream's new subjects")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--recluster-every", type=int, default=150)
    ap.add_argument("--budgets", default="64,256", help="stage-1 budgets to measure the trained model with (the first: as trained)")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    budgets = [int(b) for b in a.budgets.split(",")]
    t_all = time.time()
    tok, facts, ours, corpus_texts = reference_model()
    length = ours.config.knowledge_length
    rows = []
    for size, steps in progress(((ours.config.knowledge_num, max(30, a.steps // 5)), (a.size, a.steps)), "bank sizes"):
        n_fill = size - len(corpus_texts) - min(a.free, size // 8)
        fill = filler_sentences(n_fill, {f["subject"] for f in facts}, tok, length)
        t0 = time.time()
        bank = MemoryBank.from_texts(corpus_texts + fill, tok, size, length, progress=False)
        model, _ = grown(ours, bank)
        t_build = time.time() - t0
        row = dict(knowledge_num=size, filled=int(bank.valid.sum()), token_dtype=str(bank.tokens.dtype).replace("torch.", ""),
                   bank_mib=sum(t.numel() * t.element_size() for t in (bank.tokens, bank.valid, bank.frozen)) / 2**20,
                   index_mib=index_bytes(model, False) / 2**20, key_cache_eval_mib=index_bytes(model, True) / 2**20,
                   build_s=t_build)
        pre = measure(model, tok, facts, size, t_build)
        row.update({f"{k}_before": pre[k] for k in ("recall_bank_only", "hit1_bank_only", "edit_efficacy", "hit_k_layer1")})
        row.update(train_at_size(model, tok, steps, WORK / f"scale_train_{size}", a.lr, a.recluster_every))
        model.eval()
        for budget in budgets:                              # a setting of the search, not a weight (see bench/scale.py)
            model.config.num_candidates_internal = budget
            post = measure(model, tok, facts, size, t_build)
            tag = "after" if budget == budgets[0] else f"after_{budget}"
            keep = ("recall_bank_only", "hit1_bank_only", "recall_train", "edit_efficacy", "locality_others", "hit_k_layer1")
            row.update({f"{k}_{tag}": post[k] for k in keep + (("exact_top1_layer1", "cells_used") if tag == "after" else ())})
        model.config.num_candidates_internal = budgets[0]
        rows.append(row)
        print(json.dumps(row), flush=True)
        del model, bank
    df = pd.DataFrame(rows)
    model_cache_keys = ours.config.cache_keys
    ratio = rows[1]["tokens_per_s"] / rows[0]["tokens_per_s"]
    notes = [f"Both rows start from the same trained model (bench/knowledge.py's 'ours', {STEPS} steps with a 4,096-entry "
             f"bank) and train on with the reference recipe (24 counterfactual fact statements + 8 texts per batch, teacher "
             f"forcing, retrieval loss), learning rate {a.lr}, re-clustering the sub-keys every {a.recluster_every} steps "
             "and at the end. The first row is the reference bank size, run in the same process for the tokens/s ratio.",
             f"tokens/s with {a.size:,} entries / with {rows[0]['knowledge_num']:,}: {ratio:.2f} (median over logging "
             "windows of 10 steps; windows with a re-clustering are slower).",
             f"Bank: the corpus's {len(corpus_texts)} facts, generated canonical facts (bench/scale.py's filler, seed 11), "
             f"and {min(a.free, a.size // 8):,} empty slots for the fact stream's new subjects and distractors. bank_mib: "
             "token ids (narrowest dtype holding the vocabulary) + valid and frozen masks; index_mib: every memory layer's "
             "cell index; key_cache_eval_mib: their key caches, which the model keeps for evaluation only (cache_keys="
             f"{model_cache_keys!r}: a training step holds none unless it is 'always'); both derived, rebuilt after loading, not saved.",
             "peak_rss_mib: peak resident memory of the whole process during training (the model, both banks' data, the "
             "tokenizer, the fact stream), sampled every 5 ms; rss_before_mib: just before training.",
             "_before / _after: bench/scale.py's measures at this bank size before and after the training steps (stage-1 "
             f"budget num_candidates_internal={budgets[0]} as in training); _after_<n>: after training, read with a stage-1 "
             "budget of n candidates.",
             f"Total wall time {time.time() - t_all:.0f}s."]
    write_result("scale_training", f"Training with a {a.size:,}-entry bank on CPU", df, notes, vars(a))


if __name__ == "__main__":
    main()
