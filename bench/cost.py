"""Benchmark 3 — cost: MemoryLM vs an equal-size BaselineLM, and retrieval time as the bank grows.

1. Training throughput (tokens/s) of the reference recipe's step — a counterfactual fact batch (24 fact statements +
   8 texts) with the bank overlay, teacher forcing and the retrieval loss for the memory model; the same statements
   with true objects for the baseline — measured in the same run by interleaving rounds of memory and baseline steps
   (the machine is noisy: read the ratio); peak memory of a training process per model (separate subprocesses: memory
   added by building and training each model); and parameters.
2. Retrieval time per batch as knowledge_num grows (1K, 16K, 256K, 1M): the product-key gate (stage 1 alone and the
   full two-stage gate) vs brute-force scoring of the same queries against every entry vector (precomputed, i.e.
   the most favourable brute force).

    python bench/cost.py                # ~5 min on 2 CPU cores
    pip install product-key-memory==0.3.0   # the peer of the retrieval table (benchmark only, not a dependency)
"""
import argparse, copy, json, math, multiprocessing as mp, statistics, time
import pandas as pd
import torch
from torch import nn
from common import DATA, PeakRSS, equal_size_configs, load_local_tokenizer, n_params, tensor_memory_mib, trained, write_result
from common import RECIPE
from explicitlm.bank import MemoryBank, build_bank
from explicitlm.config import ExplicitLMConfig
from explicitlm.gate import ProductKeyGate
from explicitlm.minimind import BaselineLM, MemoryLM
from explicitlm.train import TrainConfig, bank_overlay, fact_stream, step_loss


def setup(kind, tok, same_batches=False, **overrides):
    """(model, fact stream, train config, optimizer) of the reference recipe for `kind` ('memory' or 'baseline'); `overrides`
    change the model config; `same_batches`: the baseline trains on the memory model's batches (token ids), not its own."""
    mem_cfg, base_cfg = equal_size_configs(tok, **overrides)
    cfg = TrainConfig(**{k: v for k, v in RECIPE.items() if k in TrainConfig.__dataclass_fields__})
    bank = build_bank(DATA / "sentence_trex.json", tok, mem_cfg.knowledge_num, mem_cfg.knowledge_length, cache_dir=None, verbose=False)
    bank.tokenizer = tok
    torch.manual_seed(0)
    model = (MemoryLM(mem_cfg) if kind == "memory" else BaselineLM(base_cfg)).train()
    if kind == "memory": bank = model.set_bank(bank).memory_bank; model.cluster_keys()
    texts = [json.loads(l)["text"] for l in (DATA / "pretrain.jsonl").read_text().splitlines() if l.strip()]
    stream = fact_stream(cfg, tok, bank, texts, kind == "memory" or same_batches, mem_cfg.max_seq_len)
    return model, stream, cfg, torch.optim.AdamW(model.parameters(), 1e-3)


# the seeds' MiniMind backbone (dim 512, 8 layers) beside the bundled reference size: the memory layer's cost is mostly
# per-op overhead at dim 128, so the ratio depends on the backbone's size
BACKBONES = {"reference (dim 128, 4 layers)": {},
             "seeds' size (dim 512, 8 layers)": dict(dim=512, n_layers=8, n_heads=8, memory_layers=[1, 3, 5, 7])}

def backbone_scaling(rounds=3, steps_per_round=4, batch=8, new_tokens=32):
    """Training and generation tokens/s, memory/baseline, per backbone size in `BACKBONES`, from freshly initialised models
    (the generation's gate selects at every position: `null_threshold=-1`, the read path's full cost)."""
    tok, rows = load_local_tokenizer(), []
    texts = [json.loads(l)["text"] for l in (DATA / "pretrain_eval.jsonl").read_text().splitlines() if l.strip()]
    prompt = torch.tensor([i[:24] for i in (tok.encode(t, add_special_tokens=False) for t in texts) if len(i) >= 24][:batch])
    for name, over in BACKBONES.items():
        runs = {kind: setup(kind, tok, **over) for kind in ("memory", "baseline")}
        for r in runs.values(): train_steps(*r, range(2))                   # warm-up
        t = {k: [0.0, 0, 0.0, 0] for k in runs}
        for r in range(rounds):
            for k in (("memory", "baseline") if r % 2 == 0 else ("baseline", "memory")):
                s, n = train_steps(*runs[k], range(10 + r * steps_per_round, 10 + (r + 1) * steps_per_round))
                t[k][0] += s; t[k][1] += n
                m = runs[k][0].eval()
                thresholds = [l.memory_gate.null_threshold for l in getattr(m, "memory_modules", dict)().values()]
                learned = [th.detach().clone() for th in thresholds]
                with torch.no_grad():
                    for th in thresholds: th.fill_(-1.0)          # generation only: training goes on with the learned ones
                    t0 = time.perf_counter()
                    out = m.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens, do_sample=False,
                                     use_cache=True, eos_token_id=None, pad_token_id=0)
                    t[k][2] += time.perf_counter() - t0; t[k][3] += (out.shape[1] - prompt.shape[1]) * len(prompt)
                    for th, v in zip(thresholds, learned): th.copy_(v)
                m.train()
        tps = {k: (v[1] / v[0], v[3] / v[2]) for k, v in t.items()}
        rows.append(dict(backbone=name, params_memory=n_params(runs["memory"][0]), params_baseline=n_params(runs["baseline"][0]),
                         train_ratio=tps["memory"][0] / tps["baseline"][0], generate_ratio=tps["memory"][1] / tps["baseline"][1],
                         train_tokens_per_s_memory=tps["memory"][0], train_tokens_per_s_baseline=tps["baseline"][0]))
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def train_steps(model, stream, cfg, opt, steps):
    "Run one optimizer step per fact batch `steps`; returns (seconds, tokens)."
    t0, tokens = time.perf_counter(), 0
    for i in steps:
        b = stream.batch(i)
        with bank_overlay(model, b):
            loss, parts = step_loss(model, model, b, cfg, i, "cpu")
            opt.zero_grad(); loss.backward()
        opt.step(); tokens += parts["tokens"]
        if hasattr(model, "cluster_keys") and (i + 1) % cfg.recluster_every == 0: model.cluster_keys(seed=i)
    return time.perf_counter() - t0, tokens


def _peak_child(kind, overrides, steps, q):
    "In a fresh process: peak resident memory added by building `kind` and training it `steps` steps (sampled every ms)."
    tok = load_local_tokenizer()
    with PeakRSS(every=0.001) as rss:
        model, stream, cfg, opt = setup(kind, tok, **overrides)
        train_steps(model, stream, cfg, opt, range(steps))
    q.put(rss.peak - rss.start)


def in_fresh_process(target, *args):
    "What `target(*args, queue)` puts on its queue, run in a fresh (spawned) process: nothing allocated here counts."
    ctx = mp.get_context("spawn"); q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q)); p.start(); v = q.get(); p.join()
    return v


def peak_mib(kind, overrides, steps=20): return in_fresh_process(_peak_child, kind, overrides, steps)


def _tensor_peak_child(kind, overrides, steps, q):
    """In a fresh process: live tensor bytes (every allocation of torch's CPU allocator, from before the model is built)
    at the start of training and at their peak over `steps` steps, on the memory model's batches for both models."""
    from torch.profiler import profile, ProfilerActivity
    torch.set_num_threads(2)
    tok = load_local_tokenizer()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        with torch.profiler.record_function("setup"): run = setup(kind, tok, same_batches=True, **overrides)
        with torch.profiler.record_function("train"): train_steps(*run, range(steps))
    at_start, peak = tensor_memory_mib(prof, "train")
    bank = run[1].bank.tokens
    q.put(dict(start=at_start, peak=peak, bank=bank.numel() * bank.element_size() / 2**20))


def tensor_peaks(steps=6):
    """Peak live tensor memory of training, memory vs baseline on identical batches (the memory model's: its recipe adds
    longer statements), per key-cache setting; target: memory <= baseline + 1.5x the bank's own bytes."""
    got = {name: in_fresh_process(_tensor_peak_child, kind, over, steps) for name, (kind, over) in VARIANTS.items()}
    base, rows = got["BaselineLM"], []
    for name, g in got.items():
        rows.append(dict(model=name, live_at_start_mib=g["start"], peak_mib=g["peak"], over_baseline_mib=g["peak"] - base["peak"],
                         allowance_mib=1.5 * g["bank"], within=g["peak"] - base["peak"] <= 1.5 * g["bank"]))
    return pd.DataFrame(rows)


# the models of the main table: (kind, config overrides); the memory model with and without its key cache
VARIANTS = {"MemoryLM": ("memory", {}), "MemoryLM (cache_keys='always')": ("memory", dict(cache_keys="always")),
            "MemoryLM (cache_keys='never')": ("memory", dict(cache_keys="never")), "BaselineLM": ("baseline", {})}

def throughput(rounds=6, steps_per_round=10):
    tok = load_local_tokenizer()
    runs = {name: setup(kind, tok, **over) for name, (kind, over) in VARIANTS.items()}
    for r in runs.values(): train_steps(*r, range(3))                       # warm-up
    t, names = {k: [0.0, 0] for k in runs}, list(runs)
    for r in range(rounds):                                                   # interleave to share the machine's noise
        for k in names[r % len(names):] + names[:r % len(names)]:
            steps = range(10 + r * steps_per_round, 10 + (r + 1) * steps_per_round)
            s, n = train_steps(*runs[k], steps); t[k][0] += s; t[k][1] += n
    peaks = {name: peak_mib(kind, over) for name, (kind, over) in VARIANTS.items()}
    gen = generation_throughput()
    rows = [dict(model=k, params=n_params(runs[k][0]), tokens_per_s=t[k][1] / t[k][0], generate_tokens_per_s=gen[k],
                 peak_train_mib=peaks[k]) for k in names]
    base = rows[-1]
    rows += [dict(model=f"ratio {r['model']}/baseline", **{c: r[c] / base[c] for c in r if c != "model"}) for r in rows[:-1]]
    return pd.DataFrame(rows), runs["MemoryLM"][0].config


def with_key_cache(model, mode):
    "A copy of the memory `model` with `cache_keys=mode` (its gates drop or build their key caches at their next call)."
    m = copy.deepcopy(model)
    m.config.cache_keys = mode                                   # (the gates share the model's config)
    return m


def generation_throughput(rounds=6, batch=8, new_tokens=48):
    """KV-cached greedy generation tokens/s of the trained reference models (memory vs baseline, 1,500 steps), rounds
    interleaved in one process: `batch` prompts of bundled held-out text, `new_tokens` new tokens each (no early stop)."""
    tok = load_local_tokenizer()
    mem_cfg, base_cfg = equal_size_configs(tok)
    mem = trained("ours_s1500", "memory", mem_cfg, 1500)[0].eval()
    models = {"MemoryLM": mem, "MemoryLM (cache_keys='always')": with_key_cache(mem, "always"),
              "MemoryLM (cache_keys='never')": with_key_cache(mem, "never"),
              "BaselineLM": trained("baseline_equal_size_s1500", "baseline", base_cfg, 1500)[0].eval()}
    texts = [json.loads(l)["text"] for l in (DATA / "pretrain_eval.jsonl").read_text().splitlines() if l.strip()]
    ids = [i[:24] for i in (tok.encode(t, add_special_tokens=False) for t in texts) if len(i) >= 24]
    prompt = torch.tensor(ids[:batch])
    def run(m):
        t0 = time.perf_counter()
        with torch.no_grad():      # transformers' generate; eos_token_id=None: no early stop at EOS
            out = m.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens, do_sample=False,
                             use_cache=True, eos_token_id=None, pad_token_id=0)
        return time.perf_counter() - t0, (out.shape[1] - prompt.shape[1]) * len(prompt)
    for m in models.values(): run(m)                                          # warm-up
    t, names = {k: [0.0, 0] for k in models}, list(models)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            s, n = run(models[k]); t[k][0] += s; t[k][1] += n
    return {k: n / s for k, (s, n) in t.items()}


ORDER = ["step", "forward", "  memory layers (all)", "    gate (all)", "      gate: index update after bank writes",
         "      gate: stage 1", "    slot reader", "  retrieval loss"]

def step_breakdown(steps=20, warmup=5):
    """Where a training step's time goes (ms per step, mean over `steps` after `warmup`): the fact batch, forward (with
    the bank overlay), backward, optimizer — and, inside the memory model's forward, its memory layers' parts."""
    from unittest import mock
    import explicitlm.train as T
    from explicitlm.fusion import MemoryLayer, SlotReader
    from explicitlm.gate import ProductKeyGate
    tok, cols = load_local_tokenizer(), {}
    for name, (kind, over) in VARIANTS.items():
        model, stream, cfg, opt = setup(kind, tok, **over)
        t, inner = dict.fromkeys(("fact batch", "forward", "backward", "optimizer"), 0.0), {}
        def wrap(owner, name, label):
            f = getattr(owner, name)
            def w(*a, **k):
                t0 = time.perf_counter(); r = f(*a, **k); inner[label] = inner.get(label, 0.0) + time.perf_counter() - t0
                return r
            return mock.patch.object(owner, name, w)
        patches = [wrap(MemoryLayer, "forward", ORDER[2]), wrap(ProductKeyGate, "forward", ORDER[3]),
                   wrap(ProductKeyGate, "sync", ORDER[4]), wrap(ProductKeyGate, "candidates", ORDER[5]),
                   wrap(SlotReader, "forward", ORDER[6]), wrap(T, "retrieval_loss", ORDER[7])]
        for p in patches: p.start()
        try:
            for i in range(warmup + steps):
                if i == warmup: inner.clear(); t = dict.fromkeys(t, 0.0)
                t0 = time.perf_counter(); b = stream.batch(i); t1 = time.perf_counter()
                with bank_overlay(model, b):
                    loss, _ = step_loss(model, model, b, cfg, i, "cpu"); t2 = time.perf_counter()
                    opt.zero_grad(); loss.backward(); t3 = time.perf_counter()
                opt.step(); t4 = time.perf_counter()
                for k, v in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)): t[k] += v
        finally:
            for p in patches: p.stop()
        cols[name] = {**{k: v / steps * 1000 for k, v in t.items()}, **{k: v / steps * 1000 for k, v in inner.items()}}
        cols[name]["step"] = sum(cols[name][k] for k in ("fact batch", "forward", "backward", "optimizer"))
    rows = ["step", "fact batch", "forward", *ORDER[2:], "backward", "optimizer"]
    return pd.DataFrame([dict(part=r, **{f"{name} ms": c.get(r) for name, c in cols.items()}) for r in rows])


def top_ops(steps=10, n=12):
    "torch.profiler's top `n` operators by self CPU time in `steps` training steps of each model (ms per step, calls per step)."
    from torch.profiler import profile, ProfilerActivity
    tok, cols = load_local_tokenizer(), []
    for kind in ("memory", "baseline"):
        model, stream, cfg, opt = setup(kind, tok)
        train_steps(model, stream, cfg, opt, range(5))
        with profile(activities=[ProfilerActivity.CPU]) as prof: train_steps(model, stream, cfg, opt, range(5, 5 + steps))
        ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:n]
        cols.append(pd.DataFrame({f"{kind} op": [e.key[:48] for e in ev],
                                  f"{kind} ms": [e.self_cpu_time_total / 1e3 / steps for e in ev],
                                  f"{kind} calls": [e.count / steps for e in ev]}))
    return pd.concat(cols, axis=1)


def timed(fn, repeat=5):
    fn()                                                                      # warm-up
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return 1000 * statistics.median(ts)


@torch.no_grad()
def brute_force_topk(q, entry_vecs, k, chunk=65536):
    "Exact top-k of q @ entry_vecs.T over all entries, chunked over entries (keeps memory bounded)."
    best_s = best_i = None
    for i in range(0, len(entry_vecs), chunk):
        s = q @ entry_vecs[i:i + chunk].T
        s, j = s.topk(min(k, s.shape[-1]), dim=-1); j = j + i
        if best_s is not None:
            s, pos = torch.cat([best_s, s], -1).topk(k, dim=-1); j = torch.cat([best_i, j], -1).gather(-1, pos)
        best_s, best_i = s, j
    return best_s, best_i


def peer_pkm(n, dim, kd, topk):
    "lucidrains' product-key memory at our shape (one head, sqrt(n) x sqrt(n) sub-keys, top-k), or None if not installed."
    try: from product_key_memory import PKM
    except ImportError: return None
    torch.manual_seed(0)
    return PKM(dim, heads=1, num_keys=math.isqrt(n), topk=topk, dim_head=kd).eval()


def held_mib(*tensors) -> float:
    "MiB held by `tensors` (parameters and buffers that a retrieval needs; each counted once)."
    unique = {id(t): t for t in tensors if t is not None}.values()
    return sum(t.numel() * t.element_size() for t in unique) / 2**20


@torch.no_grad()
def retrieval_scaling(sizes, batch=16, seq=64, dim=128, kd=64, length=16, mode="token", internal=32):
    rows = []
    for n in sizes:
        cfg = ExplicitLMConfig(vocab_size=2623, dim=dim, knowledge_num=n, knowledge_length=length, knowledge_dim=kd,
                               num_candidates=8, num_candidates_internal=internal, query_mode=mode, n_heads=4, n_kv_heads=2)
        torch.manual_seed(0)
        gate, emb = ProductKeyGate(cfg, dim).eval(), nn.Embedding(cfg.vocab_size, dim)
        bank = MemoryBank(n, length)
        bank.update_tokens(torch.arange(n), torch.randint(1, cfg.vocab_size, (n, length)))
        gate.cluster_keys(bank, emb)                                          # files every entry once (not timed)
        gate_no_cache = copy.deepcopy(gate)                                   # the same gate keeping no key cache
        gate_no_cache.config.cache_keys = "never"; gate_no_cache.key_cache = None
        x = torch.randn(batch, seq, dim)
        q = gate.gate_proj(x).reshape(-1, kd)
        vecs = gate.key_cache                                                  # brute force gets these for free
        k = min(internal, n)
        rows.append(dict(knowledge_num=n, query_mode=mode, queries=q.shape[0] if mode == "token" else batch,
                         stage1_ms=timed(lambda: gate.candidates(x)),
                         gate_total_ms=timed(lambda: gate(x, bank, emb)),
                         gate_no_cache_ms=timed(lambda: gate_no_cache(x, bank, emb)),
                         brute_force_ms=timed(lambda: brute_force_topk(q if mode == "token" else q.reshape(batch, seq, kd).mean(1), vecs, k), repeat=3)))
        rows[-1]["brute/stage1"] = rows[-1]["brute_force_ms"] / rows[-1]["stage1_ms"]
        rows[-1]["gate/stage1"] = rows[-1]["gate_total_ms"] / rows[-1]["stage1_ms"]
        rows[-1]["ours_held_mib"] = held_mib(bank.tokens, gate.key_cache, *gate.buffers(), *gate.parameters())
        rows[-1]["ours_no_cache_held_mib"] = held_mib(bank.tokens, *gate_no_cache.buffers(), *gate_no_cache.parameters())
        peer = peer_pkm(n, dim, kd, k) if mode == "token" else None
        if peer is not None:                    # its whole forward: scores, top-k, the weighted sum of value vectors
            rows[-1]["peer_pkm_ms"] = timed(lambda: peer(x))
            rows[-1]["gate/peer"] = rows[-1]["gate_total_ms"] / rows[-1]["peer_pkm_ms"]
            rows[-1]["peer_held_mib"] = held_mib(*peer.parameters(), *peer.buffers())
        print(rows[-1], flush=True)
        del vecs, bank, peer, gate_no_cache
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1024,16384,262144,1048576")
    ap.add_argument("--skip-retrieval", action="store_true", help="only the training-cost table")
    ap.add_argument("--skip-training", action="store_true", help="only the retrieval table")
    ap.add_argument("--name", default="", help="suffix of the result files (e.g. to keep a run of an older checkout apart)")
    ap.add_argument("--backbones-only", action="store_true", help="only the memory/baseline table by backbone size and the top "
                    "operators of generation at the seeds' size (freshly initialised models: no trained checkpoint needed)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of the backbone-size table")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 on a machine whose cores other work keeps busy)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.time()
    if a.backbones_only: return backbones_table(a.name, a.rounds)
    if not a.skip_training: training_table(a.name)
    if not a.skip_retrieval: retrieval_table(a.sizes, t0, a.name)


def training_table(name=""):
    tp, mem_cfg = throughput()
    peaks = tensor_peaks()
    parts = step_breakdown()
    sizes = backbone_scaling()
    ops = top_ops()
    write_result("cost_training" + name, "Cost: training throughput, memory and parameters (equal size)", tp,
                 ["tokens_per_s measured by interleaving 6 rounds x 10 steps of each model in one process: the reference recipe's "
                  "step (fact batch, bank overlay, teacher forcing, retrieval loss for the memory model; the same statements, "
                  "true objects, for the baseline).",
                  "generate_tokens_per_s: KV-cached greedy generation (transformers' GenerationMixin.generate, no stop at EOS) of the trained reference models (bench/knowledge.py's "
                  "'ours' and equal-size baseline, 1,500 steps), 8 prompts of 24 tokens x 48 new tokens, 6 interleaved rounds.",
                  "peak_train_mib = peak resident memory added by building the model and training it 20 steps, in a fresh subprocess (sampled every ms); "
                  "each model on its own recipe's batches (the memory model's are longer), so read the tensor table below for target 2.",
                  "MemoryLM = cache_keys='inference' (the default): no key cache in training (stage 2 re-encodes its candidates' "
                  "keys from their tokens at each call), every entry's key cached for generation. cache_keys='always': the cache "
                  "in training too; 'never': no key cache at all. Their generation rows are the same trained model switched.",
                  "Peak tensor memory: every allocation of torch's CPU allocator from before the model is built (torch.profiler, "
                  "profile_memory), 6 training steps in a fresh process, every model on the memory model's batches (identical token ids); "
                  "live_at_start = parameters, bank, cell index and key caches before the first step; target 2: "
                  "over_baseline_mib <= allowance_mib = 1.5x the bank's bytes (token ids).",
                  "CPU, float32, batches of 24 fact statements + 8 bundled biographies.",
                  "Where the time goes: ms per step, mean of 20 steps after 5 warm-up steps, each model alone, same recipe "
                  "(forward includes the bank overlay's writes and the retrieval loss; indented rows are parts of the row above "
                  "them).",
                  "By backbone size: the same recipe and equal-size pairs (fusion_dim matched) at the bundled reference size and "
                  "at the seeds' MiniMind size, freshly initialised, 3 interleaved rounds of 4 steps; generation 8 prompts x 32 "
                  "new tokens with the gate selecting at every position (null_threshold=-1)."],
                 dict(fusion_dim=mem_cfg.fusion_dim, dim=mem_cfg.dim, n_layers=mem_cfg.n_layers, knowledge_num=mem_cfg.knowledge_num),
                 extra=[("Peak tensor memory of training on identical batches (MiB)", peaks),
                        ("Where a training step's time goes (ms per step)", parts),
                        ("Memory/baseline by backbone size (the memory layer's overhead is mostly per operation)", sizes),
                        ("Top operators by self CPU time per training step (torch.profiler, 10 steps)", ops)])


def generation_top_ops(n=12, batch=8, new_tokens=32):
    """torch.profiler's top `n` operators by self CPU time of one KV-cached greedy generation at the seeds' size (ms per
    generation, calls), memory model (gate reading at every position) and baseline, freshly initialised."""
    from torch.profiler import profile, ProfilerActivity
    tok, cols = load_local_tokenizer(), []
    texts = [json.loads(l)["text"] for l in (DATA / "pretrain_eval.jsonl").read_text().splitlines() if l.strip()]
    prompt = torch.tensor([i[:24] for i in (tok.encode(t, add_special_tokens=False) for t in texts) if len(i) >= 24][:batch])
    for kind in ("memory", "baseline"):
        m = setup(kind, tok, **BACKBONES["seeds' size (dim 512, 8 layers)"])[0].eval()
        with torch.no_grad():
            for layer in getattr(m, "memory_modules", dict)().values(): layer.memory_gate.null_threshold.fill_(-1.0)
            run = lambda: m.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens, do_sample=False,
                                     use_cache=True, eos_token_id=None, pad_token_id=0)
            run()
            with profile(activities=[ProfilerActivity.CPU]) as prof: run()
        ev = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:n]
        cols.append(pd.DataFrame({f"{kind} op": [e.key[:48] for e in ev], f"{kind} ms": [e.self_cpu_time_total / 1e3 for e in ev],
                                  f"{kind} calls": [e.count for e in ev]}))
    return pd.concat(cols, axis=1)


def backbones_table(name="", rounds=3):
    t0 = time.time()
    sizes = backbone_scaling(rounds=rounds)
    ops = generation_top_ops()
    write_result("cost_backbones" + name, "Cost by backbone size: memory/baseline tokens/s (freshly initialised, equal size)", sizes,
                 [f"The same recipe and equal-size pairs (fusion_dim matched) at the bundled reference size and at the seeds' MiniMind "
                  f"size, freshly initialised; training: {rounds} interleaved rounds of 4 steps of each model; generation 8 prompts "
                  "x 32 new tokens, KV cache, greedy, the gate selecting at every position (null_threshold=-1), one per round "
                  "and model, interleaved.",
                  f"CPU, float32, {torch.get_num_threads()} torch thread(s); the machine's 2 cores were shared with other sessions' work while it ran: read "
                  "the ratios (each from one run), and compare runs minutes apart for their spread.",
                  f"Total wall time {time.time() - t0:.0f}s."],
                 dict(rounds=rounds), extra=[("Top operators by self CPU time of one generation at the seeds' size (8 x 32 tokens; ms, calls)", ops)])


def retrieval_table(sizes, t0, name=""):
    sizes = [int(s) for s in sizes.split(",")]
    sc = pd.concat([retrieval_scaling(sizes, mode="token", internal=32), retrieval_scaling(sizes, mode="mean", internal=128)])
    write_result("cost_retrieval" + name, "Cost: retrieval time per batch vs knowledge_num", sc,
                 ["Batch of 16 sequences x 64 tokens, hidden 128, knowledge_dim 64, entries of 16 tokens, eval mode, median of 5 runs.",
                  "stage1_ms: the product-key stage (query projection, sub-key scores, the best cells' entries up to "
                  "num_candidates_internal); gate_total_ms: the full gate (stage 1, the candidates' cached keys, per-position "
                  "re-scoring, selection). Filing the entries in their cells is done once beforehand (cluster_keys) and not timed.",
                  "gate_no_cache_ms / ours_no_cache_held_mib: the same gate with cache_keys='never' (stage 2 re-encodes the "
                  "candidates' keys from their tokens at each call; it holds the bank, its cell index and the weights, no keys).",
                  "brute_force_ms: exact top-k of the same queries against every entry vector (precomputed, chunked) — "
                  "O(knowledge_num) per query, the cost product keys avoid.",
                  "token mode: one query per token (MiniMind), num_candidates_internal=32; mean mode: one query per sequence "
                  "(the seeds' ExplicitLM), num_candidates_internal=128.",
                  "peer_pkm_ms: lucidrains' product-key-memory (PKM, PyPI 0.3.0; `pip install product-key-memory` — installed for "
                  "this benchmark only) at the same shape in the same process: one head, sqrt(knowledge_num) x sqrt(knowledge_num) "
                  "sub-keys, top-32, its whole forward (query, sub-key scores, top-k, weighted sum of the selected value vectors). "
                  "It reads learned value vectors; ours re-scores readable entries, so the work differs: read gate/peer as what "
                  "readable entries cost over opaque values.",
                  "ours_held_mib / peer_held_mib: memory held for retrieval (ours: bank token ids, the entries' cached keys, the "
                  "cell index, sub-keys and projections; the peer: its value table, sub-keys and projections).",
                  f"Total wall time {time.time() - t0:.0f}s."],
                 dict(sizes=sizes))


if __name__ == "__main__":
    main()
