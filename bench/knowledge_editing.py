"""Benchmark 2 — knowledge editing: change facts by editing bank entries (no gradient step) and compare with
fine-tuning the equal-size baseline on the new facts for the same wall-clock budget.

For N facts we replace the object with another value of the same kind ("… was born in 1874." → "… in 1911."):
- edit success: the model's greedy answer after the fact's prompt is the new value,
- locality: share of untouched facts whose answers stay exactly the same,
- time per edit (tokenize + write the entry; and with re-clustering the product keys once after all edits).

Uses the checkpoints trained by `fact_recall.py` (same --steps), training them if missing.

    python bench/knowledge_editing.py --steps 1200 --n-edits 200
"""
import argparse, copy, json, random, time
import pandas as pd
import torch
from common import DATA, equal_size_configs, load_local_tokenizer, subset_jsonl, trained, write_result
from explicitlm import eval as ev
from explicitlm.data import PretrainDataset, collate


def make_edits(facts, n, seed):
    "n (fact, new object) pairs: a different object of the same predicate, seeded."
    rng = random.Random(seed)
    by_pred = {}
    for f in facts: by_pred.setdefault(f["predicate"], set()).add(f["object"])
    chosen = rng.sample([f for f in facts if len(by_pred[f["predicate"]]) > 1], n)
    return [(f, rng.choice(sorted(by_pred[f["predicate"]] - {f["object"]}))) for f in chosen]


def edited_fact(f, new):
    "The fact record with its object replaced (prompt stays, answer and sentence change)."
    g = dict(f); g.update(object=new, answer=" " + new, sentence=f"{f['prompt']} {new}.")
    return g


def answers(model, tok, facts):
    return ev.fact_recall(model, tok, facts, progress=False)["per_item"]["prediction"].tolist()


def score(model, tok, edits, locality_facts, before_local):
    "(edit success, locality) of `model` for `edits` and the untouched `locality_facts`."
    new = [edited_fact(f, o) for f, o in edits]
    success = float(ev.fact_recall(model, tok, new, progress=False)["per_item"]["correct"].mean())
    after_local = answers(model, tok, locality_facts)
    locality = sum(a == b for a, b in zip(after_local, before_local)) / len(before_local)
    return success, locality


def finetune(model, tok, texts, seconds, lr=1e-3, batch_size=16, min_steps=1):
    "Fine-tune all of `model` on `texts` until `seconds` have passed (at least `min_steps`); returns steps done."
    ds = PretrainDataset([{"text": t} for t in texts], tok, model.config.max_seq_len)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train(); steps, t0, g = 0, time.time(), torch.Generator().manual_seed(0)
    while steps < min_steps or time.time() - t0 < seconds:
        idx = torch.randperm(len(ds), generator=g)[:batch_size].tolist()
        b = collate([ds[i] for i in idx])
        loss = model(b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"]).loss
        opt.zero_grad(); loss.backward(); opt.step(); steps += 1
    model.eval()
    return steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1200, help="training steps of the fact_recall checkpoints")
    ap.add_argument("--n-edits", type=int, default=200)
    ap.add_argument("--n-locality", type=int, default=400)
    ap.add_argument("--generous-seconds", type=float, default=60.0, help="a second, longer fine-tuning budget")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    tok = load_local_tokenizer()
    mem_cfg, base_cfg = equal_size_configs(tok)
    data = subset_jsonl(DATA / "pretrain.jsonl", 1.0)
    mem, _, _ = trained(f"memory_100pct_s{a.steps}", "memory", mem_cfg, a.steps, data, a.seed)
    base, _, _ = trained(f"baseline_100pct_s{a.steps}", "baseline", base_cfg, a.steps, data, a.seed)
    facts = ev.load_facts(DATA / "facts.jsonl")
    edits = make_edits(facts, a.n_edits, a.seed)
    edited_uuids = {f["uuid"] for f, _ in edits}
    rng = random.Random(a.seed + 1)
    local = rng.sample([f for f in facts if f["uuid"] not in edited_uuids], a.n_locality)
    idx = ev.fact_bank_index(mem.memory_bank, [f for f, _ in edits], tok)
    rows = []

    # --- memory model: edit bank entries
    before_ok = ev.fact_recall(mem, tok, [f for f, _ in edits], progress=False)["per_item"]["correct"].tolist()
    before_local = answers(mem, tok, local)
    t0 = time.perf_counter()
    for f, o in edits: mem.memory_bank.edit(idx[f["uuid"]], edited_fact(f, o)["sentence"], force=True)
    t_edit = time.perf_counter() - t0
    s, l = score(mem, tok, edits, local, before_local)
    rows.append(dict(method="MemoryLM: edit bank entries", success=s, locality=l, seconds_total=t_edit,
                     ms_per_edit=1000 * t_edit / len(edits), gradient_steps=0))
    known = [e for e, ok in zip(edits, before_ok) if ok]
    if known:
        s_known = float(ev.fact_recall(mem, tok, [edited_fact(f, o) for f, o in known], progress=False)["per_item"]["correct"].mean())
        rows[-1]["success_on_facts_it_knew"] = s_known
    t1 = time.perf_counter(); mem.cluster_keys(seed=a.seed); t_cluster = time.perf_counter() - t1
    s, l = score(mem, tok, edits, local, before_local)
    rows.append(dict(method="MemoryLM: edit + re-cluster keys", success=s, locality=l, seconds_total=t_edit + t_cluster,
                     ms_per_edit=1000 * (t_edit + t_cluster) / len(edits), gradient_steps=0))
    budget = t_edit + t_cluster

    # --- baseline: fine-tune on the new fact sentences (same wall-clock budget, then a generous one)
    before_local_b = answers(base, tok, local)
    texts = [edited_fact(f, o)["sentence"] for f, o in edits]
    for label, secs in (("same budget", budget), (f"{a.generous_seconds:.0f} s", a.generous_seconds)):
        m = copy.deepcopy(base)
        t0 = time.perf_counter(); steps = finetune(m, tok, texts, secs); spent = time.perf_counter() - t0
        s, l = score(m, tok, edits, local, before_local_b)
        rows.append(dict(method=f"BaselineLM: fine-tune on new facts ({label})", success=s, locality=l, seconds_total=spent,
                         ms_per_edit=1000 * spent / len(edits), gradient_steps=steps))
    df = pd.DataFrame(rows)
    notes = [f"{len(edits)} edits of train and bank-only facts; locality over {len(local)} untouched facts (answer unchanged).",
             "Frozen bank entries (freeze_ratio) are edited with force=True: a person editing the bank overrides the freeze.",
             f"MemoryLM recalled {sum(before_ok)}/{len(edits)} of the edited facts correctly before editing; "
             "success_on_facts_it_knew is the edit success restricted to those.",
             "Re-clustering lays the product keys out again so that edited entries are found by content in stage 1.",
             "The baseline fine-tunes all its weights with AdamW (lr 1e-3, batch 16) on the edited sentences."]
    write_result("knowledge_editing", "Knowledge editing: bank edits vs fine-tuning", df, notes,
                 dict(steps=a.steps, n_edits=a.n_edits, n_locality=a.n_locality, seed=a.seed))


if __name__ == "__main__":
    main()
