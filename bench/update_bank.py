"""Benchmark — knowledge updates from text (`explicitlm.update.update_bank`).

Two check sets of held-out paragraphs, each written into the bank of a trained model one `update_bank` call per
paragraph, then the relations' canonical cloze prompts are asked: facts about new people, changed facts (the new value
must come out), facts restated unchanged, facts of relations no training step used, and 500 facts no paragraph touches
(their answers must not change). The bank is restored between rows.

- `data/update_paragraphs.jsonl` (48 paragraphs, the corpus's first relations) in the corpus's own phrasings with
  appositives, joined clauses, first names and sentences stating nothing;
- `data/plain_paragraphs.jsonl` (48 paragraphs, `explicitlm.update.plain_paragraphs`) in plain English the corpus never
  uses — pronouns, openers ("Friends remember that"), asides, relative clauses, subject-last sentences ("Dreimefa Mills
  employed X"), records ("X - hometown: Keiran") — over 15 relations, three of them never trained.

Rows: our reference model (`bench/knowledge.py`'s "ours", 1,500 steps) with the generic `ClauseExtractor` (the default:
one statement per clause, placed where the model's own retrieval reads that subject and relation) and with the
rule-based `RelationExtractor` in each entry form (canonical sentence, the clause as written, the whole sentence —
the seeds' way); the seeds' design beside it. Long entries are compressed with LLMLingua (llmlingua 0.2.2, SmolLM2-135M
scoring, subject and names kept). Checkpoints are shared with `bench/knowledge.py` (trained here if missing).

    python bench/update_bank.py            # ~15 min with cached checkpoints on 2 cores
    python bench/update_bank.py --queries  # ours beside ours with hidden-state queries (update_bank_queries.md)
"""
import json, sys, time
from pathlib import Path
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import DATA, trained, equal_size_configs, progress, write_result
from knowledge import HIDDEN, row_key
from explicitlm.backbone import smollm2_path
from explicitlm.config import SEEDS_DESIGN
from explicitlm.data import load_local_tokenizer
from explicitlm.eval import load_facts
from explicitlm.knowledge import recall_and_hits
from explicitlm.update import (update_check, update_bank, load_update_paragraphs, RelationExtractor, ClauseExtractor, sentence_extractor,
                               LinguaCompressor)

STEPS = 1500
SEEDS_TRAIN = dict(retrieval_weight=0.0, teacher_forcing=0.0, delete=0.0)
COLUMNS = ["recall_all", "recall_new", "recall_changed", "recall_restated", "recall_heldout_relations", "recall_before_update",
           "untouched_unchanged", "old_entries_replaced", "writes", "entries_with_subject_and_object", "compressed",
           "refused_paragraphs", "seconds_per_paragraph"]

HIDDEN_KEY = row_key(HIDDEN)          # the checkpoint bench/knowledge.py trains for its hidden-state-queries row


def where_it_fails(model, tok, paragraphs, **update_kwargs) -> pd.DataFrame:
    """Each stated fact after its paragraph's `update_bank`: was an entry with its subject and object written, does the
    gate select that entry at the question's last token (any memory layer), is the answer right — by kind of fact."""
    from explicitlm.explorer import retrieval_table
    from explicitlm.knowledge import answers, answer_matches
    rows = []
    with model.memory_bank.preserved():
        for p in paragraphs:
            up = update_bank(model, p["text"], tok, **update_kwargs)
            for f in p["facts"]:
                ent = [c.index for c in up.changes if f["subject"] in c.new_text and f["object"] in c.new_text]
                rows.append(dict(kind="new" if f["old_object"] is None else "changed" if f["old_object"] != f["object"] else "restated",
                                 entry=ent[0] if ent else None, fact=f))
        for r, a in zip(rows, answers(model, tok, [r["fact"]["prompt"] for r in rows])):
            t = retrieval_table(model, tok, r["fact"]["prompt"])
            r.update(written=r["entry"] is not None, selected=r["entry"] in set(t[t.position == t.position.max()].entry),
                     right=answer_matches(a, r["fact"]["answer"]))
    df = pd.DataFrame(rows)
    out = df.groupby("kind")[["written", "selected", "right"]].mean()
    out.loc["all"] = df[["written", "selected", "right"]].mean()
    out["selected | written"] = [df[(df.kind == k) | (k == "all")].pipe(lambda d: d[d.written].selected.mean()) for k in out.index]
    out["right | selected"] = [df[(df.kind == k) | (k == "all")].pipe(lambda d: d[d.selected].right.mean()) for k in out.index]
    return out.reset_index()


def main(threads: int = 2, queries: bool = False):
    """Every row (`update_bank.md`); `queries`: ours and ours with hidden-state queries in both memory layers (the last
    default) side by side, no seeds' design or baseline (`update_bank_queries.md`)."""
    torch.set_num_threads(threads)
    t0 = time.time()
    tok, facts = load_local_tokenizer(), load_facts(DATA / "facts.jsonl")
    sets = {"corpus style": load_update_paragraphs(), "plain English": load_update_paragraphs(DATA / "plain_paragraphs.jsonl")}
    lingua = LinguaCompressor(smollm2_path())
    mem_cfg, base_cfg = equal_size_configs(tok)
    seeds_cfg, _ = equal_size_configs(tok, **SEEDS_DESIGN)
    ours = trained(f"ours_s{STEPS}", "memory", mem_cfg, STEPS)[0]
    extractors = {"clauses (generic)": lambda: ClauseExtractor(tok), "relation (rule-based)": RelationExtractor,
                  "sentence": lambda: sentence_extractor}
    if queries:
        hidden = trained(f"{HIDDEN_KEY}_s{STEPS}", "memory", equal_size_configs(tok, query_source="residual")[0], STEPS)[0]
        spec = [(n, m, s, e, f) for n, m in [("ours", ours), ("ours with hidden-state queries", hidden)] for s in sets
                for e, f in [("clauses (generic)", "statement"), ("relation (rule-based)", "canonical")]]
        baseline = None
    else:
        seeds = trained(f"seeds_design_s{STEPS}", "memory", seeds_cfg, STEPS, **SEEDS_TRAIN)[0]
        baseline = trained(f"baseline_equal_size_s{STEPS}", "baseline", base_cfg, STEPS)[0]
        spec = [("ours", ours, s, e, f) for s in sets for e, f in [("clauses (generic)", "statement"), ("relation (rule-based)", "canonical"),
                                                                  ("relation (rule-based)", "statement"), ("sentence", "sentence")]]
        spec += [("seeds' design", seeds, s, e, f) for s in sets for e, f in [("clauses (generic)", "statement"),
                                                                             ("relation (rule-based)", "canonical")]]
    rows, examples = [], []
    for name, model, set_name, ext, form in progress(spec, "update_bank rows"):
        r = update_check(model, tok, sets[set_name], facts, extractor=extractors[ext](), form=form, compressor=lingua, force=True)
        rows.append(dict(model=name, paragraphs=set_name, extractor=ext, entry=form, **{k: r[k] for k in COLUMNS}))
        examples += [dict(row=f"{name} / {set_name} / {ext} / {form}", source=s, entry=e) for s, e in r["examples"][:2]]
        print(json.dumps(rows[-1], default=str), f"({time.time() - t0:.0f}s)", flush=True)
    fails = pd.concat([where_it_fails(ours, tok, ps, compressor=lingua, force=True).assign(paragraphs=n) for n, ps in sets.items()])
    print(fails.to_string(index=False), flush=True)
    base = {n: float(recall_and_hits(baseline, tok, [f for p in ps for f in p["facts"]]).correct.mean())
            for n, ps in sets.items()} if baseline is not None else {}
    notes = []
    for n, ps in sets.items():
        stated = [f for p in ps for f in p["facts"]]
        n_new = sum(f["old_object"] is None for f in stated)
        n_changed = sum(f["old_object"] not in (None, f["object"]) for f in stated)
        notes.append(f"{n}: {len(ps)} paragraphs, {len(stated)} stated facts: {n_new} about new people, {n_changed} changed, "
                     f"{len(stated) - n_new - n_changed} restated unchanged" + (f"; the equal-size baseline (no bank, cannot "
                     f"take an update) answers {base[n]:.3f} of them." if n in base else "."))
    if queries: notes.append("ours: the first memory layer queries the bank with a bag of the text's token embeddings, the "
                             "second with its hidden state (query_source='tokens,residual', the default); ours with "
                             "hidden-state queries: both with the hidden state (the last default). Both 1,500 steps, the "
                             "checkpoints of bench/knowledge.py.")
    notes += ["recall = greedy exact match of the object to the relation's canonical cloze prompt, after all paragraphs of "
              "the set were written; recall_all over every stated fact; recall_heldout_relations over the stated facts of "
              "relations no training step used (the plain-English set has them; the corpus-style set has none: nan).",
              "recall_before_update: the same prompts before any update (new people and changed facts cannot be known yet).",
              "untouched_unchanged: 500 facts of the corpus no paragraph mentions, answers compared before/after.",
              "old_entries_replaced: changed facts whose old entry no longer states the old value (replaced, not left to "
              "contradict the new one).",
              "clauses (generic): explicitlm.update.ClauseExtractor — no pattern per relation; each clause naming an entity "
              "is a statement with its subject resolved (topic, pronouns, first names, 'the company'), openers and asides "
              "dropped, and it replaces the entry the model itself reads for it (retrieval_targets), else takes an empty slot. "
              "relation (rule-based): a regular expression per phrasing of each relation (the corpus's phrasings only). "
              "sentence: each sentence naming someone is one entry, only added (the seeds' way, with LLMLingua).",
              "entry: canonical = the relation's canonical sentence (rule-based only); statement = the clause as written, "
              "subject in full; sentence = the whole sentence. Entries longer than knowledge_length=16 are compressed with "
              "LLMLingua (SmolLM2-135M-Instruct scoring; the subject and the names/numbers of the statement kept).",
              "force=True: the reference models freeze 20% of their entries (freeze_ratio 0.2); a changed fact may sit in "
              "one, and this benchmark overwrites it. Without force such a paragraph is refused with a message naming the entry.",
              "Where it fails: for each stated fact after its paragraph's update (generic extractor, LLMLingua): written = an "
              "entry holding its subject and object was written; selected = the gate selects that entry at the question's "
              "last token in some memory layer; right = the answer is right. selected | written and right | selected split "
              "the losses between the gate (finding the entry) and the reader (reading the object out of it).",
              f"Total wall time {time.time() - t0:.0f}s."]
    write_result("update_bank_queries" if queries else "update_bank",
                 "Knowledge updates from text: update_bank on held-out paragraphs" + (", by what queries the bank" if queries else ""),
                 pd.DataFrame(rows), notes,
                 dict(steps=STEPS, sets={n: len(ps) for n, ps in sets.items()}, compressor="LLMLingua, SmolLM2-135M-Instruct"),
                 extra=[("Where it fails: ours, the generic extractor (shares of stated facts)", fails[["paragraphs", "kind", *fails.columns[1:-1]]]),
                        ("Entries written from the longest source sentences (two per row)", pd.DataFrame(examples))])


if __name__ == "__main__":
    main(int(sys.argv[sys.argv.index("--threads") + 1]) if "--threads" in sys.argv else 2, queries="--queries" in sys.argv)
