"""Benchmark — knowledge updates from text (`explicitlm.update.update_bank`).

The 48 held-out paragraphs of `data/update_paragraphs.jsonl` (24 about invented people, 24 changing facts of known
people; appositives, joined clauses, first names, sentences stating nothing, many sentences longer than an entry) are
written into the bank of each trained model, one `update_bank` call per paragraph, and the corpus's cloze prompts are
asked: facts about the new people, changed facts (the new value must come out), facts restated unchanged, and 500
facts no paragraph touches (their answers must not change). The bank is restored between rows.

Rows: our reference model (`bench/knowledge.py`'s "ours", 1,500 steps) with the rule-based relation extractor and each
entry form — canonical sentence (default), the clause as written, the whole sentence compressed with LLMLingua (the
seeds' way) — and with the generic sentence extractor + LLMLingua; the seeds' design with the canonical form and with
their whole pipeline. LLMLingua scores tokens with the Qwen3-architecture backbone of `bench/frozen_backbone.py`
(trained here if missing). Checkpoints are shared with `bench/knowledge.py` (trained here if missing).

    python bench/update_bank.py            # ~5 min with cached checkpoints
"""
import json, sys, time
from pathlib import Path
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import WORK, DATA, trained, equal_size_configs, progress, write_result
from explicitlm.config import SEEDS_DESIGN
from explicitlm.data import load_local_tokenizer
from explicitlm.eval import load_facts
from explicitlm.knowledge import recall_and_hits
from explicitlm.train import pretrain_qwen3
from explicitlm.update import (update_check, load_update_paragraphs, RelationExtractor, sentence_extractor, LinguaCompressor)

STEPS = 1500
SEEDS_TRAIN = dict(retrieval_weight=0.0, teacher_forcing=0.0, delete=0.0)


def main():
    torch.set_num_threads(2)
    t0 = time.time()
    tok, facts, paragraphs = load_local_tokenizer(), load_facts(DATA / "facts.jsonl"), load_update_paragraphs()
    scorer = WORK / f"qwen3_backbone_s{STEPS}"
    if not (scorer / "config.json").exists(): pretrain_qwen3(scorer, tok, steps=STEPS)
    lingua = LinguaCompressor(scorer)
    mem_cfg, base_cfg = equal_size_configs(tok)
    seeds_cfg, _ = equal_size_configs(tok, **SEEDS_DESIGN)
    ours = trained(f"ours_s{STEPS}", "memory", mem_cfg, STEPS)[0]
    seeds = trained(f"seeds_design_s{STEPS}", "memory", seeds_cfg, STEPS, **SEEDS_TRAIN)[0]
    baseline = trained(f"baseline_equal_size_s{STEPS}", "baseline", base_cfg, STEPS)[0]
    rows_spec = [("ours", ours, "relation", "canonical", None), ("ours", ours, "relation", "statement", lingua),
                 ("ours", ours, "relation", "sentence", lingua), ("ours", ours, "sentence", "sentence", lingua),
                 ("seeds' design", seeds, "relation", "canonical", None), ("seeds' design", seeds, "sentence", "sentence", lingua)]
    rows, examples = [], []
    for name, model, ext, form, comp in progress(rows_spec, "update_bank rows"):
        extractor = RelationExtractor() if ext == "relation" else sentence_extractor
        r = update_check(model, tok, paragraphs, facts, extractor=extractor, form=form, compressor=comp, force=True)
        rows.append(dict(model=name, extractor=ext, entry=form + (" + LLMLingua" if comp else ""),
                         **{k: v for k, v in r.items() if k != "examples"}))
        examples += [dict(row=f"{name} / {ext} / {form}", source=s, entry=e) for s, e in r["examples"][:2]]
        print(json.dumps(rows[-1], default=str), f"({time.time() - t0:.0f}s)", flush=True)
    stated = [f for p in paragraphs for f in p["facts"]]
    base_recall = float(recall_and_hits(baseline, tok, stated).correct.mean())
    df = pd.DataFrame(rows)
    n_new = sum(f["old_object"] is None for f in stated)
    n_changed = sum(f["old_object"] not in (None, f["object"]) for f in stated)
    notes = [f"{len(paragraphs)} paragraphs, {len(stated)} stated facts: {n_new} about new people, {n_changed} changed, "
             f"{len(stated) - n_new - n_changed} restated unchanged; recall = greedy exact match of the object to the "
             "corpus's canonical cloze prompt, after all paragraphs were written.",
             "recall_before_update: the same prompts before any update (new people and changed facts cannot be known yet).",
             f"The equal-size baseline has no bank and cannot take an update: its recall of the stated facts is {base_recall:.3f}.",
             "untouched_unchanged: 500 facts of the corpus no paragraph mentions, answers compared before/after.",
             "force=True: the reference models freeze 20% of their entries (freeze_ratio 0.2, the seeds' protection against "
             "automatic updates); a changed fact may sit in one, and this benchmark overwrites it. Without force such a "
             "paragraph is refused with a message naming the entry.",
             "entries_with_subject_and_object: written entries that contain the subject and the object of a stated fact.",
             "LLMLingua: llmlingua 0.2.2 PromptCompressor with the local Qwen3-architecture scorer, subject and relation words "
             "protected, rate lowered until the entry fits knowledge_length=16; an entry is compressed only when it is longer "
             "than that (column compressed: the share of written entries that were).",
             "Why the canonical form wins: every entry the models were trained to read is a canonical sentence; an entry in "
             "another phrasing, or with words dropped by the compressor, is found and read far less often.",
             "The relation extractor reads all 132 stated facts of these paragraphs (tested in nbs/14_update.ipynb); they are "
             "written in the corpus's phrasings, which is what a rule-based extractor can read.",
             f"Total wall time {time.time() - t0:.0f}s."]
    write_result("update_bank", "Knowledge updates from text: update_bank on held-out paragraphs", df, notes,
                 dict(steps=STEPS, paragraphs=len(paragraphs), scorer=str(scorer)),
                 extra=[("Entries written from the longest source sentences (two per row)", pd.DataFrame(examples))])


if __name__ == "__main__":
    main()
