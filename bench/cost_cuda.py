"""Benchmark — the memory's cost on a GPU (one short prepared script for a lent CUDA machine): the real-backbone recipe's
memory (`real_memory_config`: one read-only memory layer at 2/3 of the depth, token-bag queries, the coverage term, the
copy head) over

- SmolLM2-135M (its local copy when `explicitlm.backbone.smollm2_path()` works there, else the same architecture with
  random weights: speed does not depend on the weights), float32, the recipe's bank size (25,921 entries);
- a Qwen3-architecture model at Qwen3-0.6B's shape with random weights (nothing is downloaded), bfloat16, the gate at
  1,048,576 entries,

each beside its bare backbone, interleaved in one process: KV-cached greedy generation tokens/s, a memory-training step
against the bare backbone's forward+backward on the same batch, and peak GPU memory of both steps. Banks and training
batches are synthetic (random token ids, the recipe's shapes): a GPU machine has neither ParaRel nor CounterFact.

    python bench/cost_cuda.py                       # on a CUDA machine (~5 min on one H100)
    python bench/cost_cuda.py --device cpu --tiny   # a check that the script runs, at a tiny scale (no measurement)
"""
import argparse, math, time
from types import SimpleNamespace
import pandas as pd
import torch
from common import write_result
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen3Config
from explicitlm.bank import MemoryBank
from explicitlm.counterfactual import FactBatch
from explicitlm.explicit import ExplicitLM
from explicitlm.train import REAL_TRAIN_RECIPE, TrainConfig, real_memory_config, train_step

SMOLLM2_SHAPE = dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                     vocab_size=49152, max_position_embeddings=8192, rope_theta=100000.0, tie_word_embeddings=True, rms_norm_eps=1e-5)
QWEN3_06B_SHAPE = dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28, num_attention_heads=16, num_key_value_heads=8,
                       head_dim=128, vocab_size=151936, max_position_embeddings=40960, rope_theta=1e6, tie_word_embeddings=True)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=512, max_position_embeddings=256, tie_word_embeddings=True)


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def backbone(name, device, dtype, tiny):
    "(bare model, real weights?) — SmolLM2's local copy if there is one, else its architecture; Qwen3 at 0.6B's shape."
    torch.manual_seed(0)
    if name == "smollm2" and not tiny:
        try:
            from explicitlm.backbone import smollm2_path
            return AutoModelForCausalLM.from_pretrained(smollm2_path(), dtype=dtype).to(device).eval(), True
        except Exception as e: print(f"SmolLM2's weights are not here ({type(e).__name__}: {e}): its architecture, random weights")
    shape = TINY if tiny else (SMOLLM2_SHAPE if name == "smollm2" else QWEN3_06B_SHAPE)
    cfg = (LlamaConfig if name == "smollm2" else Qwen3Config)(**shape, pad_token_id=0, bos_token_id=None, eos_token_id=None)
    return AutoModelForCausalLM.from_config(cfg, dtype=dtype).to(device).eval(), False


class SyntheticFacts:
    "Fact batches of the recipe's shape from random token ids: `n` statements of `length` tokens, each with its entry rewritten and its last 3 positions supervised."
    def __init__(self, bank: MemoryBank, vocab: int, n: int = 16, length: int = 20, seed: int = 0):
        self.bank, self.vocab, self.n, self.length, self.seed = bank, vocab, n, length, seed
    def batch(self, step: int) -> FactBatch:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        ids = torch.randint(1, self.vocab, (self.n, self.length), generator=g)
        entries = torch.randperm(len(self.bank), generator=g)[:self.n]
        rows = torch.randint(1, self.vocab, (self.n, self.bank.knowledge_length), generator=g).to(self.bank.tokens.dtype)
        sup = torch.tensor([(r, t, int(entries[r]), int(entries[r])) for r in range(self.n) for t in range(self.length - 4, self.length - 1)])
        return FactBatch(ids, torch.ones_like(ids), ids.clone(), entries, rows, sup)


def memory_model(bare_factory, name, device, dtype, tiny, knowledge_num):
    "(memory model over a second copy of the backbone, bare backbone, fact stream): the recipe's memory, bank filled with random entries."
    bare, real = bare_factory()
    base, _ = bare_factory()
    n_layers = base.config.num_hidden_layers
    mcfg = real_memory_config(base.config, SimpleNamespace(pad_token_id=0), n_facts=knowledge_num // 2, empty=0,
                              knowledge_num=knowledge_num, **(dict(knowledge_length=16) if name == "qwen3" else {}),
                              **(dict(num_candidates_internal=64, subkey_topk=8) if tiny else {}))
    V = base.config.vocab_size
    bank = MemoryBank(mcfg.knowledge_num, mcfg.knowledge_length, 0, V)
    g = torch.Generator().manual_seed(0)
    n_fill = int(0.6 * knowledge_num)                  # the recipe's share of filled entries; the rest free for edits
    bank.update_tokens(torch.arange(n_fill), torch.randint(1, V, (n_fill, mcfg.knowledge_length), generator=g).to(bank.tokens.dtype))
    torch.manual_seed(0)
    model = ExplicitLM.from_backbone(base, mcfg, bank=bank, freeze_backbone=True, freeze_keys=True).to(device).eval()
    model.cluster_keys()
    print(f"{name}: {n_layers} layers, memory at {model.memory_layers}, {knowledge_num:,} entries, weights {'real' if real else 'random'}", flush=True)
    return model, bare, SyntheticFacts(model.bank, V), real


def timed_rounds(runs: dict, rounds: int, device) -> dict:
    "Total seconds of each of `runs` over `rounds` rounds (order rotated each round), after one warm-up call each."
    for f in runs.values(): f()
    sync(device)
    names, t = list(runs), dict.fromkeys(runs, 0.0)
    for r in range(rounds):
        for k in names[r % len(names):] + names[:r % len(names)]:
            sync(device); t0 = time.perf_counter(); runs[k](); sync(device); t[k] += time.perf_counter() - t0
    return t


def measure(name, device, dtype, tiny, knowledge_num, rounds, batch=8, prompt_len=12, new_tokens=16):
    model, bare, stream, real = memory_model(lambda: backbone(name, device, dtype, tiny), name, device, dtype, tiny, knowledge_num)
    V = bare.config.vocab_size
    prompt = torch.randint(1, V, (batch, prompt_len), generator=torch.Generator().manual_seed(1)).to(device)
    def gen(m, threshold=None):
        def f():
            gates = [l.memory_gate for l in m.memory_modules().values()] if m is model else []
            saved = [gt.null_threshold.detach().clone() for gt in gates]
            with torch.no_grad():
                for gt in gates:
                    if threshold is not None: gt.null_threshold.fill_(threshold)
                m.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, use_cache=True, pad_token_id=0)
                for gt, v in zip(gates, saved): gt.null_threshold.copy_(v)
        return f
    t = timed_rounds({"memory, reading at every position": gen(model, -1.0), "memory, initial null threshold": gen(model),
                      "bare": gen(bare)}, rounds, device)
    n = rounds * batch * new_tokens
    rows = [dict(backbone=name, measure=f"generate tokens/s: {k}", value=n / s, ratio_to_bare=t["bare"] / s) for k, s in t.items()]
    cfg = TrainConfig(**{**REAL_TRAIN_RECIPE, "out_dir": "unused", "progress": False})
    opt = torch.optim.AdamW(model.memory_parameters(), lr=cfg.learning_rate)
    for p in bare.parameters(): p.requires_grad_(True)
    done = {"m": 0, "b": 0}
    def mem_step():
        done["m"] += 1; model.train(); train_step(model, opt, None, stream, done["m"], cfg); model.eval()
    def bare_step():
        done["b"] += 1; b = stream.batch(done["b"]); bare.train()
        bare(b.input_ids.to(device), attention_mask=b.attention_mask.to(device), labels=b.labels.to(device)).loss.backward()
        bare.zero_grad(set_to_none=True); bare.eval()
    t = timed_rounds({"memory-training step": mem_step, "bare forward+backward": bare_step}, rounds * 3, device)
    rows += [dict(backbone=name, measure=f"ms per step: {k}", value=1000 * s / (rounds * 3), ratio_to_bare=s / t["bare forward+backward"]) for k, s in t.items()]
    if device.type == "cuda":
        peaks = {}
        for k, f in (("memory-training step", mem_step), ("bare forward+backward", bare_step)):
            sync(device); torch.cuda.reset_peak_memory_stats(device); f(); sync(device)
            peaks[k] = torch.cuda.max_memory_allocated(device) / 2**20
        extra = sum(p.numel() * p.element_size() for m in model.memory_parts() for p in m.parameters()) / 2**20
        extra += model.bank.tokens.numel() * model.bank.tokens.element_size() / 2**20
        rows += [dict(backbone=name, measure=f"peak GPU MiB: {k}", value=v, ratio_to_bare=v / peaks["bare forward+backward"]) for k, v in peaks.items()]
        rows.append(dict(backbone=name, measure="allowance MiB: bare peak + 1.5 x (bank + memory parameters)",
                         value=peaks["bare forward+backward"] + 1.5 * extra, ratio_to_bare=float("nan")))
    for r in rows: print(r, flush=True)
    del model, bare
    if device.type == "cuda": torch.cuda.empty_cache()
    return rows, real


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--tiny", action="store_true", help="tiny shapes and banks: checks the script runs (CPU), measures nothing")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args(argv)
    device, t0 = torch.device(a.device), time.time()
    rows, notes = [], []
    for name, dtype, n in (("smollm2", torch.float32, 161 ** 2), ("qwen3", torch.bfloat16, 1024 ** 2)):
        if a.tiny: n = 64 ** 2
        if a.tiny and device.type == "cpu": dtype = torch.float32
        got, real = measure(name, device, dtype, a.tiny, n, 1 if a.tiny else a.rounds)
        rows += got
        notes.append(f"{name}: {'its real weights' if real else 'random weights'}, {dtype}, {n:,} bank entries (60% filled with random token ids).")
    notes += ["Generation: 8 random prompts of 12 tokens, exactly 16 new tokens, greedy, KV cache; 'reading at every position' sets "
              "the null threshold to -1 (the read path's full cost). Training: the recipe's `train_step` (bank overlay, LM + retrieval "
              "loss, backward, AdamW on the memory) on synthetic fact batches of 16 x 20 tokens vs the bare backbone's forward and "
              "backward (every weight trainable) on the same batches. Peak: torch.cuda.max_memory_allocated over one step each.",
              f"{'TINY CHECK: shapes scaled down, not a measurement. ' if a.tiny else ''}Total wall time {time.time() - t0:.0f}s."]
    write_result("cost_cuda" + ("_tiny_check" if a.tiny else ""), f"Cost on {device.type.upper()}: the recipe's memory over SmolLM2-135M and a Qwen3-0.6B-shaped model",
                 pd.DataFrame(rows), notes, dict(device=str(device), rounds=a.rounds, tiny=a.tiny))


if __name__ == "__main__":
    main()
