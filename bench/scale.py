"""Benchmark — knowledge at the seeds' bank size: the reference model read from banks of 4,096, 65,536 and 1,048,576 entries.

The trained reference model (`bench/knowledge.py`'s "ours", 1,500 steps with a 4,096-entry bank) gets a larger bank
without any training: the corpus's 2,772 facts plus facts about generated people, cities and companies (the corpus
generator with another seed; no name of the corpus reused as a subject; canonical sentences of at most
`knowledge_length` tokens), up to `knowledge_num`. Its product keys have no learned values (`key_layout="content"`):
they are re-clustered from the entries' keys and every entry filed, so the same weights serve any bank size with
sqrt(knowledge_num) sub-keys per half (queries and keys centred alike, halves on the keys' interleaved principal axes:
see the gate notebook). Then, at each size, as in `bench/knowledge.py`: recall and gold-entry hit@1 of
the bank-only and train facts, edit efficacy and locality (200 edits, 500 other facts), and the time to answer.

Each size is read with the stage-1 budget the model was trained with (`num_candidates_internal=64`) and with wider
ones (`--budgets`): the budget is a setting of the search, not a weight, so it can be raised for a large bank.

    python bench/scale.py                           # 4K, 64K and 1M entries, budgets 64 and 256 (~20 min on 2 CPU cores)
"""
import argparse, json, sys, time
from pathlib import Path
import pandas as pd
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, trained, equal_size_configs, progress, write_result
from explicitlm.bank import MemoryBank
from explicitlm.config import ExplicitLMConfig, own_fields
from explicitlm.corpus import make_entities, fact_sentences
from explicitlm.data import load_local_tokenizer
from explicitlm.eval import load_facts, fact_bank_index, memory_hits
from explicitlm.knowledge import recall_and_hits, summarize_recall, edit_efficacy, answers
from explicitlm.minimind import MemoryLM

STEPS = 1500


def filler_sentences(n: int, taken: set, tok, max_tokens: int, seed: int = 11) -> list[str]:
    "`n` canonical fact sentences about generated entities whose names are not in `taken`, each at most `max_tokens` tokens."
    per_person = 4.5
    ents = make_entities(seed=seed, n_people=int(n / per_person * 1.25) + 100, n_cities=max(50, n // 400), n_companies=max(50, n // 300))
    facts = [f for f in fact_sentences(ents) if f.subject not in taken]
    texts = [f.sentence for f in facts]
    lens = [len(i) for i in tok(texts, add_special_tokens=False)["input_ids"]]
    texts = [t for t, l in zip(texts, lens) if l <= max_tokens]
    if len(texts) < n: raise ValueError(f"only {len(texts)} filler sentences for {n}: raise the generator's sizes")
    return texts[:n]


def reference_model():
    "(tokenizer, facts, the trained reference model, its bank's texts): what every scale benchmark starts from."
    tok, facts = load_local_tokenizer(), load_facts(DATA / "facts.jsonl")
    mem_cfg, _ = equal_size_configs(tok)
    ours = trained(f"ours_s{STEPS}", "memory", mem_cfg, STEPS)[0]
    return tok, facts, ours, ours.memory_bank.texts(tokenizer=tok)


def grown(model: MemoryLM, bank: MemoryBank, seed: int = 0, **overrides) -> MemoryLM:
    "`model`'s weights with `bank` (any perfect-square size): sub-keys re-clustered from the entries, every entry filed."
    cfg = ExplicitLMConfig(**{**{f.name: getattr(model.config, f.name) for f in own_fields(ExplicitLMConfig)},
                              "knowledge_num": bank.knowledge_num, **overrides})
    big = MemoryLM(cfg).eval()
    target = big.state_dict()
    keep = {k: v for k, v in model.state_dict().items() if not k.startswith("memory_bank.") and target[k].shape == v.shape}
    skipped = sorted(set(target) - set(keep) - {k for k in target if k.startswith("memory_bank.")})
    big.load_state_dict(keep, strict=False)
    big.set_bank(bank)                                   # (the bank's tokenizer comes along)
    big.cluster_keys(seed=seed)
    return big, skipped


@torch.no_grad()
def index_diagnosis(model, tok, facts, n: int = 100) -> dict:
    """Where retrieval fails, first memory layer, `n` bank-only facts: the gold entry among the product-key candidates
    (hit@k), ranked first by exact scoring against every entry's key (what stage 2 would pick with no index), and how
    many cells of the index hold entries."""
    entries = fact_bank_index(model.memory_bank, facts[:n], tok, on_missing="skip")
    hits = memory_hits(model, tok, facts[:n], entries, progress=False)
    layer = model.memory_layers[0]
    gate = model.layers[layer].memory.memory_gate
    exact = []
    for f in facts[:n]:
        out = model(torch.tensor([tok(f["prompt"], add_special_tokens=False)["input_ids"]]), output_retrieval=True)
        s = gate.key_cache.float() @ F.normalize(out.retrieval[layer].queries[0, -1].float(), dim=-1)
        exact.append(bool(s.argmax() == entries[f["uuid"]]))
    cells = gate.entry_cell[gate.entry_cell >= 0]
    first = hits[hits.layer == layer]
    return dict(hit_k_layer1=float(first["hit@k_last"].mean()), hit1_layer1=float(first["hit@1_last"].mean()),
                exact_top1_layer1=sum(exact) / len(exact), cells_used=f"{len(cells.unique())}/{model.config.num_keys ** 2}")


def measure(model, tok, facts, size, t_build):
    "One table row: recall, hit@1, edits, locality, the index diagnosis and timings of `model` with its bank of `size` entries."
    bank_only = [f for f in facts if f["split"] == "bank_only"]
    train = [f for f in facts if f["split"] == "train"][:500]
    t0 = time.time()
    rec = summarize_recall(recall_and_hits(model, tok, bank_only + train))
    t_recall = time.time() - t0
    diag = index_diagnosis(model, tok, bank_only)
    ed = edit_efficacy(model, tok, facts, n=200, n_local=500)
    t0 = time.time(); answers(model, tok, [f["prompt"] for f in bank_only[:128]]); t_answer = (time.time() - t0) / 128
    return dict(knowledge_num=size, num_candidates_internal=model.config.num_candidates_internal, recall_bank_only=rec["recall_bank_only"], hit1_bank_only=rec.get("hit@1_bank_only"),
                recall_train=rec["recall_train"], hit1_train=rec.get("hit@1_train"), edit_efficacy=ed["efficacy"],
                locality_same_subject=ed["locality_same_subject"], locality_others=ed["locality_other_subjects"],
                **diag, ms_per_answer=1000 * t_answer, build_s=t_build, recall_s=t_recall)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4096,65536,1048576")
    ap.add_argument("--budgets", default="64,256", help="stage-1 budgets (num_candidates_internal) to read each bank with")
    a = ap.parse_args(argv)
    torch.set_num_threads(2)
    t_all = time.time()
    tok, facts, ours, corpus_texts = reference_model()
    length = ours.config.knowledge_length
    sizes, budgets = [int(s) for s in a.sizes.split(",")], [int(b) for b in a.budgets.split(",")]
    fill = filler_sentences(max(sizes) - len(corpus_texts), {f["subject"] for f in facts}, tok, length)
    rows, skipped = [], []
    for n in progress(sizes, "bank sizes"):
        t0 = time.time()
        bank = MemoryBank.from_texts(corpus_texts + fill[:n - len(corpus_texts)], tok, n, length, progress=False)
        model, skipped = grown(ours, bank)
        t_build = time.time() - t0
        for budget in budgets:
            model.config.num_candidates_internal = budget          # read by the gates at every call
            rows.append(measure(model, tok, facts, n, t_build))
            print(json.dumps(rows[-1]), flush=True)
        del model
    df = pd.DataFrame(rows)
    notes = [f"One trained model (bench/knowledge.py's 'ours', {STEPS} steps with a 4,096-entry bank); no training at any size. "
             f"Weights not carried over (their shape depends on knowledge_num): {skipped} — the content-filed sub-keys, "
             "recomputed by cluster_keys from the entries.",
             f"Banks: the corpus's {len(corpus_texts)} entries first, then canonical sentences about generated entities "
             "(explicitlm.corpus.make_entities, seed 11; subjects never named in the corpus; at most "
             f"{length} tokens), every slot filled.",
             "recall: greedy exact match of the object for all 526 bank-only facts and 500 train facts; hit@1: the fact's own "
             "entry selected at the answer position (mean over memory layers).",
             "edits: 200 facts rewritten at once through bank.edit (force=True); locality: answers of the same subjects' other "
             "facts and of 500 other facts unchanged.",
             "Diagnosis (first memory layer, 100 bank-only facts): hit_k = the gold entry among the product-key stage's "
             "candidates; exact_top1 = the gold entry ranked first when the query is scored against every entry's key (no "
             "index); cells_used = cells of the content index holding at least one entry. Where exact_top1 stays high and "
             "hit_k falls, the index (stage 1) loses the entry, not the query or the key.",
             "ms_per_answer: greedy answer of up to 6 tokens, batches of 128 prompts, 2 threads; build_s: tokenizing the bank, "
             "encoding and filing every entry, re-clustering the sub-keys.",
             f"Total wall time {time.time() - t_all:.0f}s."]
    write_result("scale_knowledge", "Knowledge at the seeds' bank size: one trained model, banks of 4K to 1M entries", df, notes,
                 dict(sizes=sizes, budgets=budgets, steps=STEPS))


if __name__ == "__main__":
    main()
