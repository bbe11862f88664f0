"""Benchmark — the seeds' main flow: a frozen pretrained backbone whose memory parts alone learn to read the bank.

1. Pretrain a small Qwen3-architecture causal LM (`Qwen3ForCausalLM` from a config) on the corpus's pretraining text
   (the bank-only people never appear in it) and save it as a local Hugging Face directory with the bundled tokenizer.
2. `explicitlm-train-memory init_from=<that dir>`: wrap it with `ExplicitLM` (memory layers, copy head) and train only
   the memory parts on the counterfactual fact stream.
3. Ask it what `bench/knowledge.py` asks (recall, hit@1, edits, locality, insertion, deletion, phrasings, two hops),
   and check that every backbone weight is bit-identical before and after.

    python bench/frozen_backbone.py          # ~50 min on 2 CPU cores (the backbone is cached in bench/work/)
    python bench/frozen_backbone.py --query-hidden 512   # only the MLP-query row
"""
import argparse, json, time
import pandas as pd
import torch
from transformers import Qwen3ForCausalLM
from common import DATA, ON_TERMINAL, WORK, load_local_tokenizer, n_params, progress, write_result
from explicitlm import knowledge as K
from explicitlm.config import ExplicitLMConfig
from explicitlm.eval import eval_loss, load_facts, mcq_accuracy
from explicitlm.data import load_omcq
from explicitlm.train import REFERENCE_RECIPE, TrainConfig, train_memory, pretrain_qwen3


def train_frozen_memory(bdir, tok, query_hidden, steps, seed):
    "Wrap the frozen backbone in `bdir` with memory layers 1 and 3 and train only the memory parts; (model, seconds)."
    mcfg = ExplicitLMConfig(knowledge_num=4096, knowledge_length=16, knowledge_dim=64, num_candidates=8,
                            num_candidates_internal=64, memory_layers=[1, 3], fusion_dim=64, max_seq_len=128,
                            query_hidden=query_hidden, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    t0 = time.time()
    res = train_memory(mcfg, TrainConfig(out_dir=str(WORK / f"frozen_memory_q{query_hidden}_s{steps}"), init_from=str(bdir),
                                         max_steps=steps, **REFERENCE_RECIPE, eval_every=500, eval_batches=8, save_every=10**9, log_every=100,
                                         monitor_generations=0, progress=ON_TERMINAL, cache_dir=str(WORK / "cache"), seed=seed,
                                         freeze_keys=True, overwrite=True))
    return res.model.eval(), time.time() - t0


def quality(m, tok, facts, mcq, rec=None):
    "Recall (train / bank-only people), the bank-only multiple-choice accuracy and the held-out text loss of `m`."
    s = K.summarize_recall(rec if rec is not None else K.recall_and_hits(m, tok, facts))
    mc = mcq_accuracy(m, tok, mcq, facts, progress=False)["per_item"]
    r = dict(recall_train=s["recall_train"], recall_bank_only=s["recall_bank_only"],
             mcq_bank_only=float(mc[mc.split == "bank_only"].correct.mean()),
             eval_loss=eval_loss(m, DATA / "pretrain_eval.jsonl", tok, progress=False)["loss"])
    if "hit@1_bank_only" in s: r["hit@1_bank_only"] = s["hit@1_bank_only"]
    return r


def bank_metrics(m, tok, facts):
    "What only a model with a bank can do: edits, locality, insertion, deletion, other phrasings, two hops."
    e = K.edit_efficacy(m, tok, facts, n=300, n_local=600)
    return {"edit_train": e["efficacy_train"], "edit_bank_only": e["efficacy_bank_only"],
            "locality_same_subject": e["locality_same_subject"], "locality_others": e["locality_other_subjects"],
            "insertion": K.insertion(m, tok, facts, n_people=100)["recall"],
            "deleted_still_old": K.deletion(m, tok, facts, n=300)["still_old"],
            "paraphrase_min": float(K.paraphrase_recall(m, tok, K.load_probes("paraphrase_probes"), splits=("bank_only",))["bank_only"].min()),
            "two_hop": K.two_hop(m, tok, facts, K.load_probes("two_hop_probes"), n_edits=0)["two_hop"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone-steps", type=int, default=1500)
    ap.add_argument("--memory-steps", type=int, default=1500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--query-hidden", type=int, nargs="+", default=[0, 512],
                    help="one memory row per value: 0 = the seeds' linear query projection, >0 = an MLP with that many units")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    tok = load_local_tokenizer()
    facts, mcq = load_facts(DATA / "facts.jsonl"), load_omcq(DATA / "omcq_heldout.json")
    bdir = WORK / f"qwen3_backbone_s{a.backbone_steps}"
    if not (bdir / "config.json").exists():
        t = time.time(); pretrain_qwen3(bdir, tok, steps=a.backbone_steps, seed=a.seed)
        print(f"backbone pretrained in {time.time() - t:.0f}s")
    backbone = Qwen3ForCausalLM.from_pretrained(bdir, local_files_only=True).eval()
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    base_rec = K.recall_and_hits(backbone, tok, facts)
    rows = [dict(row="backbone alone (frozen Qwen3-arch LM)", params=n_params(backbone), trainable=0,
                 **quality(backbone, tok, facts, mcq, base_rec))]
    print(rows[-1], flush=True)
    for query_hidden in progress(a.query_hidden, "memory rows"):
        model, secs = train_frozen_memory(bdir, tok, query_hidden, a.memory_steps, a.seed)
        after = {k.replace("decoder_layer.", ""): v for k, v in model.backbone.state_dict().items()}
        name = f"+ memory, MLP query (query_hidden={query_hidden})" if query_hidden else "+ memory, linear query (the seeds')"
        rows.append(dict(row=name, params=n_params(model), trainable=sum(p.numel() for p in model.parameters() if p.requires_grad),
                         **quality(model, tok, facts, mcq), **bank_metrics(model, tok, facts),
                         backbone_bit_identical=all(torch.equal(after[k], v) for k, v in before.items()), memory_train_s=round(secs)))
        print(rows[-1], flush=True)
    notes = [f"Backbone: Qwen3ForCausalLM (hidden 128, 4 layers, tied embeddings) trained {a.backbone_steps} steps on "
             "data/pretrain.jsonl (batch 32, plain causal-LM loss); saved as a local Hugging Face directory and loaded "
             "with local_files_only.",
             f"Memory: train_memory (only memory_gate, memory_reader, gated_memory_fusion, memory_norm and the copy head "
             f"train) for {a.memory_steps} steps on the counterfactual fact stream; memory layers 1 and 3.",
             "backbone_bit_identical: every backbone tensor compared with torch.equal before and after memory training.",
             "Metrics as in bench/results/knowledge.md."]
    write_result("frozen_backbone", "The seeds' main flow: a frozen pretrained backbone reads the bank", pd.DataFrame(rows), notes,
                 dict(backbone_steps=a.backbone_steps, memory_steps=a.memory_steps, query_hidden=a.query_hidden, seed=a.seed))


if __name__ == "__main__":
    main()
