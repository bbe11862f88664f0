"""Benchmark — the memory's cost over a real pretrained backbone: ExplicitLM over a frozen SmolLM2-135M with the memory of
the real-backbone recipe (`explicitlm.train.real_memory_config`: one read-only memory layer at layer 20 of 30, token-bag
queries, the coverage term, the copy head; bench/editing.py trains it) beside the bare backbone, interleaved in one process.

1. KV-cached greedy generation tokens/s, memory model / bare backbone (the gate reading at every position — its full
   cost — and at the initial null threshold).
2. One memory-training step of the recipe (a fact batch with its bank overlay, the copy mixture's LM loss, the retrieval
   loss, backward, AdamW) against one forward and backward pass of the bare backbone on the same batch.
3. Peak tensor memory of those two steps (fresh processes, every allocation of torch's CPU allocator).
4. Answering edited facts: the memory model with 10,000 CounterFact edits in its bank against the bare backbone with k edit
   sentences before each prompt (in-context editing; the case's own edit and k-1 others), the same batch; the crossover k.
5. What a new user gets from `ExplicitLM.from_backbone(backbone, MemoryConfig(...))` (memory in every layer) beside the
   recipe's memory, reading the same bank.

The memory's weights are freshly initialised: its speed does not depend on training except through how often the null
decision reads (timed both ways). The bank holds ParaRel's facts as the recipe writes them (data: ../shared/data, as for
bench/editing.py).

    python bench/cost_real.py              # ~20 min on 2 CPU cores
    python bench/cost_real.py --quick      # fewer rounds (a smoke test)
"""
import argparse, json, multiprocessing as mp, time
from pathlib import Path
import pandas as pd
import torch
from common import tensor_memory_mib, write_result
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from explicitlm.backbone import smollm2_path
from explicitlm.bank import MemoryBank
from explicitlm.config import MemoryConfig
from explicitlm.editing import bank_edits
from explicitlm.explicit import ExplicitLM
from explicitlm.realfacts import RealFactStream, edit_sentence, load_counterfact, write_facts
from explicitlm.train import REAL_TRAIN_RECIPE, TrainConfig, real_memory_config, real_training_facts, train_step

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
PARAREL_DEFAULT, COUNTERFACT_DEFAULT = SHARED / "pararel", SHARED / "counterfact" / "counterfact-edit.json"


def recipe_model(pararel=PARAREL_DEFAULT, counterfact=COUNTERFACT_DEFAULT, bare: bool = True):
    "(memory model, bare backbone or None, tokenizer, fact stream, train config): the recipe's memory, untrained, over SmolLM2."
    path = smollm2_path()
    tok = AutoTokenizer.from_pretrained(path)
    cfg = TrainConfig(**{**REAL_TRAIN_RECIPE, "out_dir": "unused", "init_from": "smollm2", "pararel_path": str(pararel),
                         "holdout_path": str(counterfact), "progress": False})
    facts, _, templates = real_training_facts(cfg)
    mcfg = real_memory_config(AutoConfig.from_pretrained(path), tok, len(facts))
    bank = MemoryBank(mcfg.knowledge_num, mcfg.knowledge_length, mcfg.pad_token_id, len(tok)); bank.tokenizer = tok
    written = write_facts(bank, facts, templates, tok, seed=cfg.seed, progress=False)
    torch.manual_seed(cfg.seed)
    model = ExplicitLM.from_backbone("smollm2", mcfg, bank=bank, freeze_backbone=True, freeze_keys=cfg.freeze_keys).eval()
    model.cluster_keys()
    stream = RealFactStream(written, templates, tok, model.bank, n_facts=cfg.fact_sequences, counterfactual=cfg.counterfactual,
                            absent=cfg.delete, noise_prefix=cfg.noise_prefix, seed=cfg.seed)
    return model, AutoModelForCausalLM.from_pretrained(path).eval() if bare else None, tok, stream, cfg


def memory_gates(model): return [m.memory_gate for m in model.memory_modules().values()]


class NullThreshold:
    "Context: every memory layer's null threshold set to `value` (None: as it is), restored after."
    def __init__(self, model, value): self.gates, self.value = memory_gates(model), value
    def __enter__(self):
        self.saved = [g.null_threshold.detach().clone() for g in self.gates]
        if self.value is not None:
            with torch.no_grad():
                for g in self.gates: g.null_threshold.fill_(self.value)
    def __exit__(self, *exc):
        with torch.no_grad():
            for g, v in zip(self.gates, self.saved): g.null_threshold.copy_(v)


def greedy(model, enc, tok, new_tokens):
    "Seconds of one KV-cached greedy generation of exactly `new_tokens` tokens for the batch `enc`."
    t0 = time.perf_counter()
    with torch.no_grad():
        model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False, use_cache=True,
                       pad_token_id=tok.pad_token_id)
    return time.perf_counter() - t0


def interleaved(runs: dict, rounds: int) -> dict:
    "Total seconds of each of `runs` (name → no-argument callable) over `rounds` rounds, the order rotated each round."
    for f in runs.values(): f()                                                   # warm-up
    names, t = list(runs), dict.fromkeys(runs, 0.0)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t0 = time.perf_counter(); runs[k](); t[k] += time.perf_counter() - t0
    return t


def prompts_of(tok, cases, prefix=lambda c: ""):
    tok.padding_side = "left"
    return tok([prefix(c) + c["prompt"] for c in cases], return_tensors="pt", padding=True)


def generation(model, bare, tok, cases, rounds=4, batch=8, new_tokens=16):
    "KV-cached greedy tokens/s of the memory model (two null settings) and the bare backbone, rounds interleaved."
    enc = prompts_of(tok, cases[:batch])
    def mem(threshold):
        def f():
            with NullThreshold(model, threshold): greedy(model, enc, tok, new_tokens)
        return f
    t = interleaved({"memory, reading at every position": mem(-1.0), "memory, initial null threshold": mem(None),
                     "bare SmolLM2-135M": lambda: greedy(bare, enc, tok, new_tokens)}, rounds)
    n = rounds * batch * new_tokens
    base = n / t["bare SmolLM2-135M"]
    return pd.DataFrame([dict(model=k, generate_tokens_per_s=n / s, ratio_to_bare=n / s / base) for k, s in t.items()])


def backbone_step(bare, stream, step):
    "One forward and backward pass of the bare backbone (every weight trainable) on the fact batch of `step`."
    b = stream.batch(step)
    bare.train()
    bare(b.input_ids, attention_mask=b.attention_mask, labels=b.labels).loss.backward()
    bare.zero_grad(set_to_none=True); bare.eval()


def training(model, bare, stream, cfg, rounds=4, steps=3):
    "Seconds per memory-training step and per bare forward+backward on the same batches, rounds interleaved."
    for p in bare.parameters(): p.requires_grad_(True)
    opt = torch.optim.AdamW(model.memory_parameters(), lr=cfg.learning_rate)
    done = {"memory": 0, "bare": 0}
    def run(kind):
        def f():
            for _ in range(steps):
                done[kind] += 1
                if kind == "memory": model.train(); train_step(model, opt, None, stream, done[kind], cfg); model.eval()
                else: backbone_step(bare, stream, done[kind])
        return f
    t = interleaved({"memory-training step (recipe)": run("memory"), "bare forward+backward": run("bare")}, rounds)
    for p in bare.parameters(): p.requires_grad_(False)
    per = {k: v / (rounds * steps) for k, v in t.items()}
    base = per["bare forward+backward"]
    return pd.DataFrame([dict(step=k, ms=1000 * s, ratio_to_bare=s / base) for k, s in per.items()])


def _peak_child(kind, paths, steps, threads, q):
    "In a fresh process: peak live tensor bytes over `steps` steps of `kind` ('memory' or 'bare'), and the bank's and memory's bytes."
    from torch.profiler import profile, ProfilerActivity
    torch.set_num_threads(threads)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with torch.profiler.record_function("setup"):
            model, bare, tok, stream, cfg = recipe_model(*paths, bare=kind == "bare")
            if kind == "bare":
                model.unwrap(); del model
                for p in bare.parameters(): p.requires_grad_(True)
            else: opt = torch.optim.AdamW(model.memory_parameters(), lr=cfg.learning_rate)
        with torch.profiler.record_function("train"):
            for i in range(steps):
                if kind == "bare": backbone_step(bare, stream, i)
                else: model.train(); train_step(model, opt, None, stream, i, cfg)
    at_start, peak = tensor_memory_mib(prof, "train")
    bank = stream.bank.tokens
    mem_bytes = 0 if kind == "bare" else sum(p.numel() * p.element_size() for m in model.memory_parts() for p in m.parameters())
    q.put(dict(start=at_start, peak=peak, bank=bank.numel() * bank.element_size() / 2**20, memory=mem_bytes / 2**20))


def in_fresh_process(target, *args):
    "What `target(*args, queue)` puts on its queue, run in a fresh (spawned) process: nothing allocated here counts."
    ctx = mp.get_context("spawn"); q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q)); p.start(); v = q.get(); p.join()
    return v


def peaks(paths, steps=3):
    """Peak live tensor memory of a memory-training step and of the bare backbone's forward+backward (the memory model's
    batches); target: memory <= bare + 1.5x (the bank's bytes + the memory parameters' bytes)."""
    got = {k: in_fresh_process(_peak_child, k, paths, steps, torch.get_num_threads()) for k in ("memory", "bare")}
    m, b = got["memory"], got["bare"]
    allowance = 1.5 * (m["bank"] + m["memory"])
    return pd.DataFrame([dict(step="memory-training step (recipe)", live_at_start_mib=m["start"], peak_mib=m["peak"],
                              over_bare_mib=m["peak"] - b["peak"], allowance_mib=allowance, within=m["peak"] - b["peak"] <= allowance),
                         dict(step="bare forward+backward", live_at_start_mib=b["start"], peak_mib=b["peak"], over_bare_mib=0.0,
                              allowance_mib=float("nan"), within=True)])


def editing(model, bare, tok, cases, ks=(1, 2, 4, 8, 16, 32), rounds=3, batch=8, new_tokens=8, edits=10_000):
    """Seconds to answer `batch` edited-fact prompts: the memory model with `edits` CounterFact edits in the bank, and the
    bare backbone with k edit sentences before each prompt (its own edit first, then k-1 others); rows per k."""
    asked, others = cases[:batch], cases[batch:]
    def context(k):
        return lambda c: " ".join(edit_sentence(o) for o in [c] + others[:k - 1]) + " "
    encs = {k: prompts_of(tok, asked, context(k)) for k in ks}
    plain = prompts_of(tok, asked)
    with bank_edits(model.bank, cases[:edits], tok):
        def mem_answer(th):
            with NullThreshold(model, th): greedy(model, plain, tok, new_tokens)
        runs = {"memory (reading at every position)": lambda: mem_answer(-1.0),
                "memory (initial null threshold)": lambda: mem_answer(None)}
        runs.update({f"in-context, k={k}": (lambda e: lambda: greedy(bare, e, tok, new_tokens))(encs[k]) for k in ks})
        t = interleaved(runs, rounds)
    rows = [dict(method=k, prompt_tokens=int(plain.input_ids.shape[1] if k.startswith("memory") else encs[int(k.split("=")[1])].input_ids.shape[1]),
                 ms_per_batch=1000 * s / rounds) for k, s in t.items()]
    return pd.DataFrame(rows)


def crossover(df: pd.DataFrame, memory_row: str) -> str:
    "The smallest k at which in-context editing is slower than `memory_row` (or a sentence saying it never is)."
    m = float(df.loc[df.method == memory_row, "ms_per_batch"].iloc[0])
    slower = [int(r.method.split("=")[1]) for r in df.itertuples() if r.method.startswith("in-context") and r.ms_per_batch > m]
    return f"k={min(slower)}" if slower else "none of the k measured"


def new_user_default(model, tok, bare, cases, rounds=2, batch=8, new_tokens=16):
    """Trainable parameters and generation tokens/s of `from_backbone(smollm2, MemoryConfig(...))` with the default memory
    (a memory layer in every decoder layer, writing to the residual stream) reading the recipe's bank, beside the bare backbone."""
    torch.manual_seed(0)
    c = model.config
    cfg = MemoryConfig(knowledge_num=c.knowledge_num, knowledge_length=c.knowledge_length, pad_token_id=c.pad_token_id)
    m = ExplicitLM.from_backbone("smollm2", cfg, bank=model.bank).eval()
    enc = prompts_of(tok, cases[:batch])
    t = interleaved({"new-user default": lambda: greedy(m, enc, tok, new_tokens), "bare": lambda: greedy(bare, enc, tok, new_tokens)}, rounds)
    r = m.parameter_report(verbose=False)
    n = rounds * batch * new_tokens
    return dict(memory_layers=len(m.memory_layers), trainable=r["trainable"], generate_tokens_per_s=n / t["new-user default"],
                ratio_to_bare=t["bare"] / t["new-user default"])


def top_ops(model, tok, cases, stream, cfg, n=12, batch=8, new_tokens=16):
    "torch.profiler's top `n` operators by self CPU time: one generation (gate reading everywhere) and 3 memory-training steps."
    from torch.profiler import profile, ProfilerActivity
    enc, cols = prompts_of(tok, cases[:batch]), []
    opt = torch.optim.AdamW(model.memory_parameters(), lr=cfg.learning_rate)
    with NullThreshold(model, -1.0):
        greedy(model, enc, tok, new_tokens)
        with profile(activities=[ProfilerActivity.CPU]) as prof: greedy(model, enc, tok, new_tokens)
    cols.append(("generation", prof, 1))
    model.train(); train_step(model, opt, None, stream, 10**6, cfg)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(3): train_step(model, opt, None, stream, 10**6 + 1 + i, cfg)
    model.eval()
    cols.append(("training step", prof, 3))
    out = []
    for name, p, k in cols:
        ev = sorted(p.key_averages(), key=lambda e: -e.self_cpu_time_total)[:n]
        out.append(pd.DataFrame({f"{name} op": [e.key[:48] for e in ev], f"{name} ms": [e.self_cpu_time_total / 1e3 / k for e in ev],
                                 f"{name} calls": [e.count / k for e in ev]}))
    return pd.concat(out, axis=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pararel", type=Path, default=PARAREL_DEFAULT)
    ap.add_argument("--counterfact", type=Path, default=COUNTERFACT_DEFAULT)
    ap.add_argument("--quick", action="store_true", help="one or two rounds of everything (a smoke test, not a measurement)")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved rounds of generation and training (editing: one fewer)")
    ap.add_argument("--skip-peaks", action="store_true"); ap.add_argument("--skip-default", action="store_true")
    ap.add_argument("--skip-editing", action="store_true")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 on a machine whose cores other work keeps busy)")
    ap.add_argument("--name", default="", help="suffix of the result file")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0, rounds = time.time(), (1 if a.quick else a.rounds)
    model, bare, tok, stream, cfg = recipe_model(a.pararel, a.counterfact)
    cases = load_counterfact(a.counterfact)
    gen = generation(model, bare, tok, cases, rounds=rounds); print(gen, flush=True)
    tr = training(model, bare, stream, cfg, rounds=rounds, steps=1 if a.quick else 3); print(tr, flush=True)
    ed = None if a.skip_editing else editing(model, bare, tok, cases, rounds=max(1, rounds - 1))
    if ed is not None: print(ed, flush=True)
    pk = None if a.skip_peaks else peaks((a.pararel, a.counterfact), steps=1 if a.quick else 3)
    if pk is not None: print(pk, flush=True)
    ops = top_ops(model, tok, cases, stream, cfg)
    default = None if a.skip_default else new_user_default(model, tok, bare, cases, rounds=1 if a.quick else 2)
    r = model.parameter_report(verbose=False)
    extra = [("Memory-training step vs the bare backbone's forward+backward (same batches)", tr)]
    if ed is not None:
        extra.append(("Answering edited facts: 10,000 edits in the bank vs k edit sentences in context (same 8 prompts, 8 new tokens)", ed))
    if pk is not None: extra.append(("Peak tensor memory of a training step (MiB)", pk))
    extra.append(("Top operators by self CPU time (memory model; per generation of 8 x 16 tokens, per training step)", ops))
    notes = [f"SmolLM2-135M-Instruct (frozen) + the real-backbone recipe's memory ({model.config.knowledge_num} entries of "
             f"{model.config.knowledge_length} tokens: {len(stream.facts)} ParaRel facts written as the recipe writes them, the "
             f"rest empty), layers {model.memory_layers}, freshly initialised memory weights; trainable {r['trainable']:,} parameters "
             f"({r['trainable_pct']:.2f}%).",
             "Generation: 8 CounterFact prompts (left-padded), exactly 16 new tokens, greedy, KV cache (transformers' generate), "
             f"{rounds} rounds interleaved with the bare backbone. 'reading at every position' sets the null threshold to -1 (the "
             "read path's full cost); 'initial null threshold' keeps the untrained gate's 0.3 (how often a trained gate reads "
             "depends on the text).",
             "Training: the recipe's step (`train_step`: a RealFactStream batch of 16 fact statements with its bank overlay, "
             "teacher forcing, the copy mixture's LM loss, the retrieval loss over 512 negatives, backward, gradient clipping, "
             "AdamW on the memory parameters) vs the bare backbone's forward and backward (every weight trainable, no optimizer "
             "step) on the same stream's batches; ratio_to_bare = time ratio (target <= 1.3).",
             "Editing: not measured in this run." if ed is None else
             f"Editing: crossover (in-context slower than the memory reading everywhere): {crossover(ed, 'memory (reading at every position)')}; "
             f"than the memory at the initial threshold: {crossover(ed, 'memory (initial null threshold)')}. In-context prompts: "
             "the case's own edit sentence, then k-1 other cases' edit sentences, then the prompt.",
             "Peak tensor memory: every allocation of torch's CPU allocator from before the model is built (torch.profiler, "
             "profile_memory), 3 steps in a fresh process each; allowance = 1.5 x (bank token ids + memory parameters).",
             f"CPU, float32, {torch.get_num_threads()} torch thread(s); this machine's 2 cores were shared with other sessions' work while it ran: read the "
             "ratios, not the absolute numbers."]
    if default is not None:
        notes.append(f"New-user default, `ExplicitLM.from_backbone('smollm2', MemoryConfig(knowledge_num=..., knowledge_length=...))` "
                     "with the recipe's bank (the default 1,048,576-entry bank would hold a key cache of 512 MiB in each layer): "
                     f"{default['memory_layers']} memory layers, {default['trainable']:,} trainable parameters, generation "
                     f"{default['generate_tokens_per_s']:.1f} tokens/s = {default['ratio_to_bare']:.2f}x the bare backbone.")
    notes.append(f"Total wall time {time.time() - t0:.0f}s.")
    write_result("cost_real" + a.name, "Cost over a real pretrained backbone: SmolLM2-135M with the recipe's memory", gen, notes,
                 dict(rounds=rounds, knowledge_num=model.config.knowledge_num, memory_layers=model.memory_layers), extra=extra)


if __name__ == "__main__":
    main()
