"""Benchmark — does the bank hold the knowledge?

Every row is trained with the same recipe on the bundled corpus (seeded, CPU): batches of 24 counterfactual fact
statements + 8 pretraining texts (`explicitlm.counterfactual`); the equal-size BaselineLM sees the same statements
with the true objects. Then each model is asked, through its bank (`explicitlm.knowledge`):

- recall (greedy exact match) and MCQ accuracy of train facts and bank-only facts (in the bank, never in any text);
- gold-entry hit@1 at the answer position (mean over memory layers), and split by right / wrong answers;
- edits via `model.memory_bank.edit(i, text)`: efficacy, locality for the same subject and for other subjects;
- 10,000 sequential edits over a pool of 1,000 facts: efficacy on the latest values, locality outside the pool;
- insertion of 100 new people into empty slots, deletion (`clear`) of 300 facts;
- held-out phrasings (no training text uses them) per relation, two hops (+ after editing either hop);
- knowledge sensitivity, held-out LM loss, training tokens/s.

Rows: our design, the equal-size baseline, the seeds' design (pooled reader, Gumbel selection, dot scores over trained
keys, mean pooling, attention-output queries, no retrieval supervision), one-change ablations of ours, and the 10%-text
regime; and rows that read a trained row's checkpoint with a setting changed after training (`READ_AS`: keyword
candidates, a raised null threshold). The frozen-backbone line (a pretrained Qwen3-architecture backbone, memory-only training) is in
`bench/frozen_backbone.py`.

    python bench/knowledge.py                        # every row (~2.5 h on 2 CPU cores; checkpoints cached in bench/work/)
    python bench/knowledge.py --rows ours baseline   # some rows (a row's name or a unique start of it)
    python bench/knowledge.py --rows "ours with hidden-state queries, cells only (" "ours with hidden-state queries, cells only," \
        "ours with hidden-state queries in both" --name keyword                    # knowledge_keyword.md (rows named then without "with hidden-state queries")
    python bench/knowledge.py --rows ours "ours with hidden-state queries in both" "ours, both memory layers" "ours, twice" \
        "ours with hidden-state queries, twice" "ours, twice the deleted" "ours, null threshold" --name query   # knowledge_query.md
"""
import argparse, json, random, time
import pandas as pd
import torch
from common import WORK, code_version, DATA, RECIPE, equal_size_configs, load_local_tokenizer, n_params, progress, subset_facts, subset_jsonl, trained, write_result
from explicitlm import knowledge as K
from explicitlm.config import SEEDS_DESIGN
from explicitlm.eval import eval_loss, load_facts, mcq_accuracy
from explicitlm.data import load_omcq
from explicitlm.files import atomic_write_text
from explicitlm.corpus import HELDOUT_RELATIONS
from explicitlm.counterfactual import WORDINGS, HELDOUT_WORDINGS, entry_wording

# name: (model overrides, training overrides, steps key) — every ablation changes one thing of "ours"
# (the 600-step rows and "10% text: ours" were trained before the default became cache_keys='inference' and keep the
# key cache in training, as their reference "ours, 600 steps" does: read them against each other)
ALWAYS = dict(cache_keys="always")
HIDDEN = "ours with hidden-state queries in both memory layers (query_source='residual', the last default)"
ROWS = {
    "ours": ({}, {}, "main"),
    "ours, canonical entries only (entry_wordings=0)": ({}, dict(entry_wordings=0.0), "main"),
    "ours without made-up relations (invented_relations=0)": ({}, dict(invented_relations=0.0), "main"),
    "ours without match features and coverage (last stop's reader)": (dict(reader_match=False, coverage_weight=0.0), {}, "main"),
    "ours, key cache in training (cache_keys='always')": (ALWAYS, {}, "main"),
    "ours with hidden-state queries, cells only (lexical_candidates=0)": (dict(query_source="residual", lexical_candidates=0), {}, "main"),
    HIDDEN: (dict(query_source="residual"), {}, "main"),
    "ours, both memory layers queried by the text's tokens (query_source='tokens')": (dict(query_source="tokens"), {}, "main"),
    "ours, twice the new subjects (new_subjects=0.6)": ({}, dict(new_subjects=0.6), "main"),
    "ours with hidden-state queries, twice the new subjects": (dict(query_source="residual"), dict(new_subjects=0.6), "main"),
    "ours, twice the deleted facts in the fact stream (delete=0.2)": ({}, dict(delete=0.2), "main"),
    "baseline (equal size)": (None, {}, "main"),
    "seeds' design": (dict(SEEDS_DESIGN), dict(retrieval_weight=0.0, teacher_forcing=0.0, delete=0.0), "main"),
    "seeds' design, text only (their training)": (dict(SEEDS_DESIGN), dict(fact_sequences=0, batch_size=32), "short"),
    "seeds' design + EMA update (freeze_ratio 0.2)": (dict(SEEDS_DESIGN), dict(retrieval_weight=0.0, teacher_forcing=0.0, delete=0.0,
                                                                             ema_update=True), "short"),
    "ours, 600 steps": (ALWAYS, {}, "short"),
    "- slot reader (seeds' pooled reader)": (dict(ALWAYS, reader="pooled", copy_head=False), {}, "short"),
    "- copy head": (dict(ALWAYS, copy_head=False), {}, "short"),
    "- cosine score (dot)": (dict(ALWAYS, retrieval_score="dot"), {}, "short"),
    "- residual query (h_attn, the seeds')": (dict(ALWAYS, query_source="attention"), {}, "short"),
    "- counterfactual objects": (ALWAYS, dict(counterfactual=0.0, delete=0.0, new_subjects=0.0, distractors=0), "short"),
    "- teacher forcing": (ALWAYS, dict(teacher_forcing=0.0), "short"),
    "- retrieval supervision": (ALWAYS, dict(retrieval_weight=0.0), "short"),
    "- 2/3 of the fact statements (8 per batch)": (ALWAYS, dict(fact_sequences=8), "short"),
    "10% text: ours": (ALWAYS, {}, "low"),
    "10% text: baseline": (None, {}, "low"),
}
MAIN = ["ours", "baseline (equal size)", "seeds' design"]
# rows that read another row's checkpoint with settings changed after training: name -> (trained row, config changes)
READ_AS = {"ours with hidden-state queries, cells only, keyword candidates at read time":
               ("ours with hidden-state queries, cells only (lexical_candidates=0)", dict(lexical_candidates=64)),
           "ours, null threshold raised at read time (null_margin=0.06)": ("ours", dict(null_margin=0.06))}


def lingua_wording(lingua, tok, length=16):
    "An entry compressed by LLMLingua (SmolLM2 scoring): the fact in a held-out wording with an aside, subject and object kept."
    def write(f):
        long = entry_wording(f, f["object"], "heldout_aside", random.Random(f["uuid"]))
        return lingua.compress(long, [f["subject"], f["object"]], 0.5)
    return write


def evaluate(name, model, tok, facts, mcq, secs, tps, quick=False, lingua=None):
    """One row of the headline table (facts of the held-out relations only in their own columns), and the per-relation
    paraphrase and per-wording tables."""
    all_facts, facts = facts, K.trained_facts(facts)
    r = dict(row=name, params=n_params(model), train_s=round(secs), tokens_per_s=round(tps))
    rec = K.recall_and_hits(model, tok, facts)
    s = K.summarize_recall(rec)
    mc = mcq_accuracy(model, tok, [q for q in mcq if q["predicate"] not in HELDOUT_RELATIONS], facts, progress=False)["per_item"]
    r.update(recall_train=s["recall_train"], recall_bank_only=s["recall_bank_only"],
             mcq_bank_only=float(mc[mc.split == "bank_only"].correct.mean()))
    held = K.heldout_relation_recall(model, tok, all_facts)
    r["heldout_relations"] = float(held.loc["all", "recall"])
    probes = [p for p in K.load_probes("paraphrase_probes") if p["predicate"] not in HELDOUT_RELATIONS]
    para = K.paraphrase_recall(model, tok, probes, splits=("bank_only",))["bank_only"]
    r["paraphrase_min"] = float(para.min())
    wording = None
    if hasattr(model, "memory_bank"):
        spec = {w: w for w in WORDINGS + HELDOUT_WORDINGS}
        wording = K.wording_recall(model, tok, all_facts, list(spec), n=200)
        if lingua is not None: wording = pd.concat([wording, K.wording_recall(model, tok, all_facts, {"llmlingua": lingua}, n=200)])
        wording = wording.set_index("wording")
        r["entries_canonical"] = float(wording.loc["canonical", "recall"])
        r["entries_trained_wordings"] = float(wording.loc[list(WORDINGS[1:]), "recall"].mean())
        r["entries_heldout_wordings"] = float(wording.loc[list(HELDOUT_WORDINGS), "recall"].mean())
        if lingua is not None: r["entries_llmlingua"] = float(wording.loc["llmlingua", "recall"])
    hop = K.two_hop(model, tok, facts, K.load_probes("two_hop_probes"), n_edits=0 if not hasattr(model, "memory_bank") else 200)
    r["two_hop"] = hop["two_hop"]
    r["eval_loss"] = eval_loss(model, DATA / "pretrain_eval.jsonl", tok, progress=False)["loss"]
    if not hasattr(model, "memory_bank"): return r, para, wording
    r.update({"hit@1_train": s["hit@1_train"], "hit@1_bank_only": s["hit@1_bank_only"],
              "hit@1 right/wrong": f"{s['hit@1_bank_only_correct']:.2f}/{s['hit@1_bank_only_wrong']:.2f}",
              "wrong: abstained/top@1": f"{s['abstained_bank_only_wrong']:.2f}/{s['top@1_bank_only_wrong']:.2f}"})
    e = K.edit_efficacy(model, tok, facts, n=300, n_local=600)
    r.update(edit_train=e["efficacy_train"], edit_bank_only=e["efficacy_bank_only"],
             locality_same_subject=e["locality_same_subject"], locality_others=e["locality_other_subjects"])
    r["insertion"] = K.insertion(model, tok, facts, n_people=100)["recall"]
    d = K.deletion(model, tok, facts, n=300)
    r.update(deleted_still_old=d["still_old"], deleted_unknown=d["unknown"])
    r.update(two_hop_edit_hop1=hop["edit_hop1"], two_hop_edit_hop2=hop["edit_hop2"])
    r["sensitivity"] = K.sensitivity(model, tok, [f for f in facts if f["split"] == "bank_only"])["sensitivity"]
    if not quick:
        sq = K.sequential_edits(model, tok, facts, n_edits=10000, pool_size=1000, n_local=1000)
        r.update(seq10k_efficacy=sq["efficacy"], seq10k_locality=sq["locality"])
    return r, para, wording


def row_key(name: str) -> str:
    "`name` as a file name."
    return name.replace(" ", "_").replace("/", "-").replace("'", "").replace(",", "").replace("(", "").replace(")", "")


def row_name(given: str) -> str:
    "The row called `given`, or the only row whose name starts with it."
    names = list(ROWS) + list(READ_AS)
    if given in names: return given
    hits = [n for n in names if n.startswith(given)]
    if len(hits) != 1:
        raise SystemExit(f"--rows {given!r} matches {len(hits)} rows {hits or ''}; give one of {names}")
    return hits[0]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", nargs="+", default=list(ROWS), help="row names or unique starts of them (see ROWS)")
    ap.add_argument("--steps", type=int, default=1500, help="training steps of the main rows")
    ap.add_argument("--short-steps", type=int, default=600, help="training steps of the ablation rows")
    ap.add_argument("--low-data-fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--reevaluate", action="store_true", help="evaluate cached checkpoints again (else their saved evaluation)")
    ap.add_argument("--no-lingua", action="store_true", help="skip the LLMLingua-compressed entries (SmolLM2 scores them)")
    ap.add_argument("--threads", type=int, default=2, help="torch threads (1 when other work shares the cores)")
    ap.add_argument("--name", default="", help="suffix of the result file (bench/results/knowledge_<name>.md): a run of some rows")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    tok = load_local_tokenizer()
    facts = load_facts(DATA / "facts.jsonl")
    mcq = load_omcq(DATA / "omcq_heldout.json")
    names = [row_name(n) for n in a.rows]
    rows, paras, wordings, t0 = [], {}, {}, time.time()
    lingua = None
    if not a.no_lingua:
        from explicitlm.backbone import smollm2_path
        from explicitlm.update import LinguaCompressor
        lingua = lingua_wording(LinguaCompressor(smollm2_path()), tok)
    for name in progress(names, "knowledge rows"):
        base, changes = READ_AS.get(name, (name, {}))
        model_over, train_over, kind = ROWS[base]
        steps = a.short_steps if kind == "short" else a.steps
        mem_cfg, base_cfg = equal_size_configs(tok, **(model_over or {}))
        data = dict(data_path=str(subset_jsonl(DATA / "pretrain.jsonl", a.low_data_fraction, a.seed)),
                    facts_path=str(subset_facts(DATA / "facts.jsonl", a.low_data_fraction, a.seed))) if kind == "low" else {}
        model_type = "baseline" if model_over is None else "memory"
        key = row_key(base)
        model, secs, metrics = trained(f"{key}_s{steps}", model_type, base_cfg if model_over is None else mem_cfg, steps,
                                       a.seed, a.retrain, **{**train_over, **data})
        for k, v in changes.items(): setattr(model.config, k, v)     # (the memory layers read the model's config)
        tps = float(metrics[metrics.kind == "train"].tokens_per_sec.median())
        # a row evaluated once (by this or another run) is kept
        saved = WORK / f"{key}_s{steps}" / (f"bench_eval_{row_key(name)}.json" if changes else "bench_eval.json")
        if saved.exists() and not (a.retrain or a.reevaluate):
            got = json.loads(saved.read_text())
            r, para = dict(got["row"], row=name, evaluated_at=got.get("code", "?")), pd.Series(got["paraphrase"], dtype=float)
            wording = pd.DataFrame(got["wording"]).set_index("wording") if got["wording"] else None
        else:
            r, para, wording = evaluate(name, model, tok, facts, mcq, secs, tps, quick=kind == "short", lingua=lingua)
            atomic_write_text(saved, json.dumps(dict(row=r, paraphrase=para.to_dict(), code=code_version(),
                                                     wording=None if wording is None else wording.reset_index().to_dict("records")), default=float))
            r = dict(r, evaluated_at=code_version())       # (a saved row says which code evaluated it: the table may be written later)
        rows.append(r); paras[name] = para
        if wording is not None: wordings[name] = wording
        print(json.dumps(r, default=str), f"({time.time() - t0:.0f}s)", flush=True)
        write_table(rows, paras, wordings, names, a, t0, tok)      # after every row: an interrupted run still leaves its table


def write_table(rows, paras, wordings, names, a, t0, tok):
    "Write bench/results/knowledge.md from the rows measured so far (the rest named as not run)."
    df = pd.DataFrame(rows)
    base = df[df.row == "baseline (equal size)"]
    if len(base): df["tokens/s vs baseline"] = df.tokens_per_s / float(base.tokens_per_s.iloc[0])
    main_cols = ["row", "params", "train_s", "recall_train", "recall_bank_only", "heldout_relations", "entries_canonical",
                 "entries_trained_wordings", "entries_heldout_wordings", "entries_llmlingua", "mcq_bank_only", "hit@1_train", "hit@1_bank_only",
                 "hit@1 right/wrong", "wrong: abstained/top@1", "edit_train", "edit_bank_only", "locality_same_subject", "locality_others", "insertion",
                 "deleted_still_old", "deleted_unknown", "seq10k_efficacy", "seq10k_locality", "paraphrase_min", "two_hop",
                 "two_hop_edit_hop1", "two_hop_edit_hop2", "sensitivity", "eval_loss", "tokens/s vs baseline", "evaluated_at"]
    df = df[[c for c in main_cols if c in df.columns]]
    para = pd.DataFrame(paras).T.reset_index().rename(columns={"index": "row"})
    words = pd.DataFrame({n: w["recall"] for n, w in wordings.items()}).T.reset_index().rename(columns={"index": "row"})
    examples = (pd.DataFrame({"example entry": next(iter(wordings.values()))["example"]}).reset_index()
                if wordings else pd.DataFrame())
    notes = ["The corpus has 46 relations; the 6 of explicitlm.corpus.HELDOUT_RELATIONS (a pet, a boat's name, a locker code, "
             "a company's logo colour, a city's dish, a ship's captain) are in no training text or step: their facts are only "
             "in the bank. heldout_relations = recall of all of their facts (canonical entries, canonical prompts); every "
             "other column leaves them out.",
             "entries_*: 200 bank-only facts of trained relations, each entry rewritten in one wording at a time "
             "(explicitlm.knowledge.wording_recall) and asked with the canonical prompt. trained_wordings: the mean over the "
             "wordings the fact stream writes (a training phrasing, an opener, an aside, a record, function words dropped); "
             "heldout_wordings: the mean over wordings no training step writes (held-out phrasings, other openers and asides, "
             "another record layout); llmlingua: the fact in a held-out wording with an aside, compressed by LLMLingua "
             "(llmlingua 0.2.2, SmolLM2-135M-Instruct scoring, rate 0.5, subject and object kept). The table below has each wording.",
             f"Main rows: {a.steps} steps; ablation rows ('- X' = ours without X): {a.short_steps} steps, compare them with "
             "'ours, 600 steps'. Recipe: " + json.dumps({k: v for k, v in RECIPE.items() if k != "cache_dir"}) + ".",
             "Each row is trained and evaluated once and kept (bench/work/<row>/bench_eval.json; --reevaluate redoes it): "
             "rows measured on different days and under different machine load sit side by side, so train_s compares "
             "nothing across rows (other runs shared the 2 cores to different degrees); the recall columns do.",
             f"MemoryLM fusion_dim is chosen per row so that it has the baseline's parameter count ({int(n_params_base(tok))}).",
             "bank_only facts: only in the bank, never in any training text (the baseline can only guess them; MCQ chance 0.25).",
             "hit@1: the fact's own entry is the gate's selection at the answer position (the last prompt token), mean over "
             "memory layers; right/wrong splits bank-only facts by whether the answer was right. wrong: abstained/top@1 = of the "
             "bank-only facts answered wrong, the share where every memory layer selected nothing (the gate's null "
             "threshold), and the mean share of layers whose top-ranked candidate was the fact's own entry.",
             "Edits and insertions go through model.memory_bank.edit / insert (force=True for frozen entries); nothing else "
             "is called between an edit and the question. Locality = answers that stayed the same.",
             "seq10k: 10,000 edits drawn with replacement from a pool of 1,000 facts (each rewritten ~10 times), then the "
             "latest value of every pool fact is asked, and 1,000 facts outside the pool (main rows only).",
             "deleted_unknown: share of deleted facts answered 'unknown' (what the fact stream teaches for an empty bank).",
             "paraphrase_min: the lowest per-relation recall of bank-only facts asked in held-out phrasings (table below).",
             "two_hop: 'The company that X worked for was based in' / 'The city that X came from lies in' for bank-only people; "
             "edit_hop1/2: the answer after editing X's entry (to a company/city with another answer) or the company's/city's entry.",
             "sensitivity: accuracy with the fact's entry minus accuracy with a counterfactual entry in its place.",
             "ours: cache_keys='inference' (the default) — in training, stage 2 re-encodes its candidates' keys from their "
             "tokens at each call (current keys; a training step holds the bank and its cell index, no key cache: "
             "bench/results/cost_training.md); evaluated with the key cache. 'ours, key cache in training': the same with "
             "cache_keys='always' (training scores cached keys, refreshed for written entries and at each re-clustering). "
             "The 600-step rows and '10% text: ours' were trained with cache_keys='always'.",
             "Queries: 'ours' queries the bank with a bag of the text's token embeddings in its first memory layer and "
             "with its hidden state in the second (query_source='tokens,residual', the MiniMind default since this "
             "file's query rows); rows named 'with hidden-state queries' use the hidden state in both (the last "
             "default); the rows of bench/results/knowledge.md, measured before this default, query with the hidden state in both.",
             "10% text: 10% of the pretraining texts and 10% of the train subjects in the fact stream; the bank holds every fact.",
             "train_s and tokens/s vs baseline come from each row's own training run, and rows may have shared the machine "
             "with other work: read speed from bench/results/cost_training.md, which interleaves both models in one process.",
             f"Total wall time {time.time() - t0:.0f}s (cached checkpoints are not retrained)."]
    missing = names[len(rows):]
    if missing: notes.append(f"Not run (yet): {missing}.")
    write_result("knowledge" + (f"_{a.name}" if a.name else ""), "Does the bank hold the knowledge? Ours vs the seeds' design vs an equal-size baseline", df,
                 notes, dict(rows=names, steps=a.steps, short_steps=a.short_steps, seed=a.seed),
                 extra=[("Held-out phrasings: recall of bank-only facts per relation", para),
                        ("Entries in each wording: recall of 200 bank-only facts (rows: models)", words),
                        ("An example entry in each wording", examples)])


def n_params_base(tok):
    from explicitlm.minimind import BaselineLM
    return n_params(BaselineLM(equal_size_configs(tok)[1]))


if __name__ == "__main__":
    main()
