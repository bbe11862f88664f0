"""Benchmark — knowledge in any wording on the real line: ExplicitLM's memory over a frozen SmolLM2-135M reading entries
in wordings and of relations that no training step used, and plain-English paragraphs written with `update_bank`,
beside the backbone alone and in-context editing.

Held out (training never states them; see `explicitlm.train.real_heldout`):
- the facts of six ParaRel relations entirely (`HELDOUT["heldout_relations"]`), with all their templates;
- every 4th template of the other relations (`heldout_templates=4`): no training entry or question uses them;
- every fact about a subject CounterFact names (as in bench/editing.py).
Each measured fact is one of those held-out facts with its object re-drawn (the backbone's own knowledge says otherwise,
so only the bank can give the new answer): CounterFact's metrics apply (ES, PS, NS, EM, unchanged).

    python bench/real_knowledge.py                 # trains once (~60 min on 2 cores, cached in bench/work/real_knowledge_kw128),
                                                   # then evaluates
    python bench/real_knowledge.py --train-lexical 0 --entry-wordings 0.5   # real_knowledge_wordings0.5.md (cells only in training)
    python bench/real_knowledge.py --train-only
"""
import argparse, os, random, time
from pathlib import Path
import pandas as pd
import torch
from transformers import AutoTokenizer
from editing import SHARED, calibrated_threshold, trained_memory, row
from common import WORK, write_result
from explicitlm.backbone import smollm2_path
from explicitlm.eval import memory_hits
from explicitlm.editing import bank_edits, counterfact_scores, neighbourhood_conflicts, reference_answers, METRICS
from explicitlm.realfacts import cloze, fill, is_prompt_template, load_counterfact, load_pararel
from explicitlm.train import REAL_MEMORY, REAL_TRAIN_RECIPE, TrainConfig, real_heldout
from explicitlm.update import update_bank

HELDOUT = dict(heldout_relations="P101,P108,P138,P39,P740,P1303", heldout_templates=4, invented_relations=0.15)

PERSON_RELATIONS = {"P19", "P20", "P27", "P101", "P103", "P106", "P108", "P1303", "P1412", "P39", "P937", "P140", "P463", "P413"}
OPENERS = ["As the records show, ", "Few people know that ", "According to an old encyclopedia, ", "It is often said that ",
           "Most sources agree that "]
ASIDES = dict(person=["a name many still remember", "a figure of some renown"], thing=["a name often heard", "a subject of many articles"])
FILLERS = ["Not much else is known.", "There is more to tell, but that is for another day.", "Little of this is widely known."]


def new_object(rng, fact, objects):
    "A re-drawn object of `fact`'s relation (the backbone's own knowledge says otherwise)."
    return rng.choice([o for o in objects[fact["relation"]] if o != fact["object"]])


def edit_case(fact, new, question, paraphrase, entry, neighbour, neighbour_question) -> dict:
    "A CounterFact-style case for `fact` with the new object `new`, asked in `question`, its entry in the template `entry`."
    s = fact["subject"]
    return dict(subject=s, relation=fact["relation"], ground_truth=fact["object"], target_new=new, prompt=cloze(question, s),
                rephrase_prompt=cloze(paraphrase, s), locality_prompt=cloze(neighbour_question, neighbour["subject"]),
                locality_ground_truth=neighbour["object"], entry=fill(entry, s, new))


def case_set(rng, facts, entry_templates, question_templates, objects, neighbours, n, tok, max_tokens):
    """`n` cases of `facts`, each fact's entry in a random template of `entry_templates[relation]` (another than its
    question where it can), asked in `question_templates[relation]`; entries longer than `max_tokens` are skipped."""
    out = []
    for f in rng.sample(facts, len(facts)):
        rel = f["relation"]
        qs, es = question_templates.get(rel, []), entry_templates.get(rel, [])
        if not qs or not es or len(objects[rel]) < 2 or not neighbours.get(rel): continue
        q = rng.choice(qs)
        para = rng.choice([t for t in qs if t != q] or qs)
        e = rng.choice([t for t in es if t != q] or es)
        nb = rng.choice(neighbours[rel])
        c = edit_case(f, new_object(rng, f, objects), q, para, e, nb, rng.choice(qs))
        if len(tok(c["entry"], add_special_tokens=False).input_ids) > max_tokens: continue
        out.append(c)
        if len(out) == n: break
    return out


def sentence_like(template: str) -> bool:
    "A template that reads as a sentence of its own: it starts with its subject or 'The', ends with '.', and is no fragment (', who ...')."
    return template.startswith(("[X] ", "The ")) and template.endswith(".") and not any(w in template for w in (", who", ", which", ", that"))


def plain_sentence(rng, template, subject, obj, first, person):
    "One plain-English sentence stating (subject, obj) in `template`: an opener or an aside for the first, a pronoun after."
    text = fill(template, subject, obj)
    if not first and template.startswith("[X] "):
        return rng.choice(["He", "She"] if person else ["It"]) + " " + text[len(subject) + 1:]
    if first and template.startswith("[X] ") and rng.random() < 0.5:
        return f"{subject}, {rng.choice(ASIDES['person' if person else 'thing'])}, {text[len(subject) + 1:]}"
    if first:
        return rng.choice(OPENERS) + (text[0].lower() + text[1:] if not template.startswith("[X]") else text)
    return text


def plain_paragraphs(rng, facts, templates, question_templates, objects, neighbours, n, tok, max_tokens):
    """`n` plain-English paragraphs, each stating 2–3 re-drawn facts about one subject (openers, asides, pronouns, a filler
    sentence), with the CounterFact-style case of each stated fact."""
    by_subject = {}
    for f in facts: by_subject.setdefault(f["subject"], []).append(f)
    subjects = sorted(s for s, fs in by_subject.items() if len({f["relation"] for f in fs}) >= 2)
    out = []
    for s in rng.sample(subjects, len(subjects)):
        fs = list({f["relation"]: f for f in by_subject[s] if question_templates.get(f["relation"]) and neighbours.get(f["relation"])
                   and len(objects[f["relation"]]) > 1}.values())
        if len(fs) < 2: continue
        fs = rng.sample(fs, min(len(fs), rng.randint(2, 3)))
        person = any(f["relation"] in PERSON_RELATIONS for f in fs)
        sentences, cases = [], []
        for k, f in enumerate(fs):
            new = new_object(rng, f, objects)
            t = rng.choice([x for x in templates[f["relation"]] if sentence_like(x)] or templates[f["relation"]])
            sentences.append(plain_sentence(rng, t, s, new, k == 0, person))
            qs = question_templates[f["relation"]]
            q = rng.choice(qs)
            cases.append(edit_case(f, new, q, rng.choice([x for x in qs if x != q] or qs), t, rng.choice(neighbours[f["relation"]]), q))
        if rng.random() < 0.5: sentences.append(rng.choice(FILLERS))
        text = " ".join(x if x.endswith((".", "!", "?")) else x + "." for x in sentences)
        out.append(dict(text=text, cases=cases))
        if len(out) == n: break
    return out


def measured_sets(pararel, counterfact, n, tok, max_tokens, n_validation=0, seed=0):
    """The held-out check sets: {name: cases} for entries in trained and held-out wordings and held-out relations, the
    plain-English paragraphs, and `n_validation` more cases in trained wordings (to calibrate on, never measured). Only
    facts training never stated: about a CounterFact subject, or of a held-out relation."""
    facts, templates = load_pararel(pararel)
    cfg = TrainConfig(**HELDOUT)
    train_facts, train_t, held_t = real_heldout(cfg, facts, templates)
    relations = set(cfg.heldout_relations.split(","))
    cf = {c["subject"].lower() for c in load_counterfact(counterfact)}
    objects = {}
    for f in facts: objects.setdefault(f["relation"], set()).add(f["object"])
    objects = {r: sorted(o) for r, o in objects.items()}
    prompts = lambda ts: {r: [t for t in v if is_prompt_template(t)] for r, v in ts.items()}
    train_q = prompts(train_t)
    unseen = [f for f in facts if f["relation"] not in relations and f["subject"].lower() in cf]      # trained relations
    held_rel = [f for f in facts if f["relation"] in relations]                                       # held-out relations
    rng = random.Random(seed)
    neighbours = {r: [f for f in train_facts if f["relation"] == r] for r in train_t}                 # true facts, in the bank
    rng_split = random.Random(seed + 1)
    held_rel = rng_split.sample(held_rel, len(held_rel))
    neighbours.update({r: [f for f in held_rel[len(held_rel) // 2:] if f["relation"] == r] for r in relations})   # never edited
    held_rel = held_rel[:len(held_rel) // 2]
    wording_q = {r: train_q[r] for r in held_t if r not in relations and held_t[r]}
    trained = case_set(rng, unseen, train_t, train_q, objects, neighbours, n + n_validation, tok, max_tokens)
    sets = {
        "entries in trained wordings (trained relations)": trained[:n],
        "entries in held-out wordings (trained relations)": case_set(rng, unseen, {r: held_t[r] for r in wording_q}, wording_q, objects,
                                                                    neighbours, n, tok, max_tokens),
        "relations never trained (facts only in the bank)": case_set(rng, held_rel, held_t, prompts(held_t), objects, neighbours, n, tok,
                                                                    max_tokens),
    }
    paragraphs = plain_paragraphs(rng, unseen + held_rel, templates, {**train_q, **prompts({r: held_t[r] for r in relations})}, objects,
                                  neighbours, n // 2, tok, max_tokens)
    return sets, paragraphs, trained[n:]


def scores_row(name, model, tok, cases, ref, entries=None, **kw):
    "A row of CounterFact's metrics; with the bank `entries` of the cases, where ours fails too (`retrieval_split`)."
    keep = [not x for x in neighbourhood_conflicts(cases, cases)]
    scores = counterfact_scores(model, tok, cases, ref, progress=True, **kw)
    split = retrieval_split(model, tok, cases, entries, scores["ES"]) if entries is not None else {}
    return row(name, scores, keep, cases=len(cases), neighbourhood_kept=sum(keep), **split)


def retrieval_split(model, tok, cases, entries, efficacy):
    """Retrieval or reading: `retrieved` = the share of questions whose own entry a memory layer selects first at the
    question's last token; ES among those (a failure there is the reader's) and among the others (retrieval missed)."""
    records = [dict(uuid=i, prompt=c["prompt"]) for i, c in enumerate(cases)]
    hits = memory_hits(model, tok, records, {i: int(e) for i, e in enumerate(entries)}, progress=False)
    hit = hits.groupby("uuid")["hit@1_last"].any().reindex(range(len(cases))).tolist()
    mean = lambda v: round(sum(v) / len(v), 3) if v else float("nan")
    return dict(retrieved=mean(hit), ES_if_retrieved=mean([e for e, h in zip(efficacy, hit) if h]),
                ES_if_missed=mean([e for e, h in zip(efficacy, hit) if not h]))


def paragraph_rows(model, tok, paragraphs, label, baselines=True):
    "Rows for the plain-English paragraphs: backbone alone and the paragraph before the prompt (`baselines`), ours after `update_bank`."
    cases = [c for p in paragraphs for c in p["cases"]]
    text_of = {id(c): p["text"] for p in paragraphs for c in p["cases"]}
    rows = []
    if baselines:
        model.set_shortcut(closed=True)
        ref = reference_answers(model, tok, cases)
        rows += [scores_row(f"{label}: SmolLM2-135M alone", model, tok, cases, ref),
                 scores_row(f"{label}: in-context (the paragraph before the prompt)", model, tok, cases, ref, prefix=lambda c: text_of[id(c)] + " ")]
        model.set_shortcut(closed=False)
    ref = reference_answers(model, tok, cases)
    written, refused = [], 0
    with model.bank.preserved():
        for p in paragraphs:
            try: written += update_bank(model, p["text"], tok).changes
            except ValueError: refused += 1
        stated = [any(c["subject"] in w.new_text and c["target_new"] in w.new_text for w in written) for c in cases]
        rows.append(dict(scores_row(f"{label}: ours (update_bank, generic extractor)", model, tok, cases, ref),
                         entries_written=len(written), facts_with_an_entry=round(sum(stated) / len(stated), 3), refused_paragraphs=refused))
        examples = [(p["text"], [w.new_text for w in written if p["cases"][0]["subject"] in w.new_text]) for p in paragraphs[:3]]
    return rows, examples


def ours_rows(model, tok, sets, label=""):
    "Ours on each check set: every case's entry in the bank at once."
    rows = []
    for name, cases in sets.items():
        ref = reference_answers(model, tok, cases)              # this model's own answers before the entries are written
        with bank_edits(model.bank, cases, tok, entry=lambda c: c["entry"]) as entries:
            rows.append(scores_row(f"{name}: ours{label} (all {len(cases)} entries in the bank)", model, tok, cases, ref, entries))
        print(rows[-1], flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pararel", type=Path, default=SHARED / "pararel")
    ap.add_argument("--counterfact", type=Path, default=SHARED / "counterfact" / "counterfact-edit.json")
    ap.add_argument("--steps", type=int, default=REAL_TRAIN_RECIPE["max_steps"])
    ap.add_argument("--work", type=Path, default=None, help="where the trained memory is cached (default bench/work/real_knowledge[_wordingsW][_kwN])")
    ap.add_argument("--entry-wordings", type=float, default=0.0, help="share of training entries rewritten (RealFactStream.reworded)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: every core)")
    ap.add_argument("--cases", type=int, default=300, help="cases per check set (half as many plain-English paragraphs)")
    ap.add_argument("--validation", type=int, default=150, help="cases to calibrate the null threshold on (0: none)")
    ap.add_argument("--calibrate", action=argparse.BooleanOptionalAction, default=True,
                    help="calibrate the null threshold on the validation cases (--no-calibrate: draw them, so the sets stay the same, but leave it as trained)")
    ap.add_argument("--lexical", default="0,128", help="keyword candidates to read the bank with (MemoryConfig.lexical_candidates), "
                                                         "a row set each: comma list (0: cells only)")
    ap.add_argument("--train-lexical", type=int, default=REAL_MEMORY["lexical_candidates"],
                    help="keyword candidates while training (default: the recipe's, REAL_MEMORY; 0: cells only, as the models "
                         "before them: no name suffix)")
    ap.add_argument("--retrain", action="store_true"); ap.add_argument("--train-only", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads or min(os.cpu_count() or 1, 16))
    variant = (f"_wordings{a.entry_wordings:g}" if a.entry_wordings else "") + (f"_kw{a.train_lexical}" if a.train_lexical else "")
    training = {**HELDOUT, **(dict(entry_wordings=a.entry_wordings) if a.entry_wordings else {})}
    model, train_secs = trained_memory(a.work or WORK / f"real_knowledge{variant}", a.pararel, a.counterfact, a.steps, a.retrain,
                                       train_changes=training, lexical_candidates=a.train_lexical)
    print(f"trained in {train_secs / 60:.1f} min")
    if a.train_only: return
    tok = AutoTokenizer.from_pretrained(smollm2_path())
    model.bank.tokenizer = tok
    t0 = time.time()
    sets, paragraphs, validation = measured_sets(a.pararel, a.counterfact, a.cases, tok, model.bank.knowledge_length, a.validation)
    rows = []
    model.set_shortcut(closed=True)                              # exactly the backbone
    for name, cases in sets.items():
        ref = reference_answers(model, tok, cases)
        rows.append(scores_row(f"{name}: SmolLM2-135M alone", model, tok, cases, ref)); print(rows[-1], flush=True)
        rows.append(scores_row(f"{name}: in-context (the entry before the prompt)", model, tok, cases, ref, prefix=lambda c: c["entry"] + " "))
        print(rows[-1], flush=True)
    model.set_shortcut(closed=False)
    trained_lexical = model.config.lexical_candidates
    for k, lexical in enumerate(int(x) for x in a.lexical.split(",")):
        model.config.lexical_candidates = lexical            # a search setting, read by the gates at every call
        search = f"{lexical} keyword candidates" if lexical else "cells only"
        rows += ours_rows(model, tok, sets, f", {search}, null threshold as trained")
        prow, ex = paragraph_rows(model, tok, paragraphs, f"plain-English paragraphs, {search}", baselines=k == 0)
        rows += prow; print(prow, flush=True)
        if k == 0: examples = ex
    shift, calibration = 0.0, None
    if validation and a.calibrate:
        shift, calibration = calibrated_threshold(model, tok, validation, 0, entry=lambda c: c["entry"])
        if shift:
            rows += ours_rows(model, tok, sets, f", {search}, null threshold {shift:+.2f}")
            rows += paragraph_rows(model, tok, paragraphs, f"plain-English paragraphs, {search}, null threshold {shift:+.2f}", baselines=False)[0]
    table = pd.DataFrame(rows)
    ex = pd.DataFrame([dict(paragraph=t, entries=" | ".join(e)) for t, e in examples])
    samples = pd.DataFrame([dict(set=k, entry=c["entry"], question=c["prompt"], new_object=c["target_new"]) for k, cs in sets.items() for c in cs[:3]])
    notes = [
        f"Held out of training: the ParaRel relations {HELDOUT['heldout_relations']} (every fact and template), every 4th template of "
        "the other relations, and every fact about a subject CounterFact names. Every measured fact is one of those, its object "
        "re-drawn from the relation's other objects: the backbone alone prefers its own answer, so ES/EM measure what the bank says.",
        "Rows per set: the backbone alone; in-context editing (the entry, or the paragraph, before the prompt); ours with every case's "
        "entry in the bank at once (the bank also holds the training facts). The question is a trained prompt template of the relation "
        "(for held-out relations, one of its own), the paraphrase (PS) another; the neighbourhood prompt asks a fact of the same "
        "relation about another subject (a training fact in the bank; for held-out relations, a held-out fact not written).",
        "Metrics as in bench/editing.md: ES = P(new) > P(true) after the prompt; PS = the same after the paraphrase; NS = the "
        "neighbour's true object still beats the new one; EM = greedy decoding gives the new object (\"answered\"); unchanged = the "
        "neighbour's greedy answer is the one the same model gave before (untouched facts unchanged).",
        "Retrieval or reading (ours with the entries written): retrieved = the share of questions whose own entry the memory "
        "selects first at the question's last token; ES_if_retrieved / ES_if_missed = ES among those and among the others.",
        f"Search settings (the same trained weights; trained with lexical_candidates={trained_lexical}): 'cells only' proposes stage 2 "
        "the num_candidates_internal entries of the cells nearest the query; 'N keyword candidates' adds up to N entries holding "
        "the rarest tokens the question has read (MemoryConfig.lexical_candidates). The calibration, if any, uses the last one.",
        "Plain-English paragraphs: 2-3 re-drawn facts about one held-out subject in any template (held-out ones included) with "
        "openers, asides, pronouns and filler sentences; written by `update_bank` with the default generic extractor "
        "(ClauseExtractor: one entry per clause, the model's own retrieval for placement); facts_with_an_entry = the share of "
        "stated facts with an entry holding their subject and object.",
        (f"Null threshold: the trained value, then (if it differs) shifted by {shift:+.2f}, the shift with the best mean of ES, PS, NS "
         f"and unchanged on {a.validation} validation cases in trained wordings that no row measures (table below)." if validation and a.calibrate else
         f"Null threshold: as trained (--no-calibrate; the {a.validation} validation cases were drawn, so the sets are those of a calibrated run)."
         if a.validation else
         "Null threshold: as trained (--validation 0). The validation cases are drawn with the trained-wordings set, so without them "
         "the other sets are other draws from the same held-out pools (the trained-wordings set is the same 300 cases)."),
        f"Training: {train_secs / 60:.0f} min on this machine (REAL_TRAIN_RECIPE plus {training}); evaluation {(time.time() - t0) / 60:.0f} min.",
    ]
    write_result(f"real_knowledge{variant}", "Knowledge in any wording on the real line: frozen SmolLM2-135M, held-out wordings and relations, "
                 f"plain English{f' (training entries rewritten: {a.entry_wordings:g})' if a.entry_wordings else ''}",
                 table, notes, dict(cases=a.cases, validation=a.validation, calibrate=a.calibrate, lexical=a.lexical, steps=a.steps, recipe=REAL_TRAIN_RECIPE,
                                   training=training),
                 [("Examples of the check sets", samples), ("update_bank on plain English: the entries it wrote", ex)]
                 + ([(f"Null-threshold calibration on {len(validation)} validation cases in trained wordings (not the measured ones)", calibration)]
                    if calibration is not None else []))


if __name__ == "__main__": main()
