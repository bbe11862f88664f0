"""Benchmark — keyword candidates on the MiniMind line: the reference model (`explicitlm.train.reference_run`, 600 steps of
the bundled corpus, the one the tests and the tour use) reading its bank with cells only and with keyword candidates
(`MemoryConfig.lexical_candidates`), the same weights, in one process.

Rows: greedy exact-match recall of every fact in data/facts.jsonl (split `train`: stated in training text too;
`bank_only`: only in the bank, never in training text), of the paraphrase probes (phrasings no training text uses), and
the memory layers' hit rates (the fact's own entry selected first / among the candidates at the prompt's last token).
Keyword candidates are a search setting: nothing is trained.

    python bench/keyword_candidates.py            # ~3 min on 2 cores once the reference model is cached (else it trains it)
"""
import argparse, json
import pandas as pd
import torch
from common import write_result
from explicitlm.data import bundled_data_dir, load_local_tokenizer
from explicitlm.eval import fact_bank_index, fact_recall, load_facts, memory_hit_rate
from explicitlm.train import load_trained, reference_run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lexical", default="0,64", help="keyword candidates per row (comma list; 0: cells only)")
    a = ap.parse_args(argv)
    tok = load_local_tokenizer()
    model = load_trained(reference_run(tokenizer=tok), tok).eval()
    trained_with = model.config.lexical_candidates
    facts = load_facts()
    probes = [json.loads(l) for l in (bundled_data_dir() / "paraphrase_probes.jsonl").read_text().splitlines() if l.strip()]
    index = fact_bank_index(model.memory_bank, facts, tok, on_missing="skip")
    rows = []
    for lexical in (int(x) for x in a.lexical.split(",")):
        model.config.lexical_candidates = lexical              # read by the gates at every call
        r, p = fact_recall(model, tok, facts, progress=False), fact_recall(model, tok, probes, progress=False)
        hits = memory_hit_rate(model, tok, [f for f in facts if f["uuid"] in index], index, progress=False)
        rows.append(dict(search=f"{lexical} keyword candidates" if lexical else "cells only", recall=r["exact_match"],
                         recall_train=r["by_split"].get("train"), recall_bank_only=r["by_split"].get("bank_only"),
                         probes=p["exact_match"], probes_train=p["by_split"].get("train"), probes_bank_only=p["by_split"].get("bank_only"),
                         **{f"{c}_layer{l}": hits.loc[l, c] for l in hits.index for c in ("hit@1_last", "hit@k_last")}))
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows).round(3)
    filled = int((model.memory_bank.tokens != tok.pad_token_id).any(-1).sum())
    notes = [f"The reference model (cpu_demo_config: knowledge_num={model.config.knowledge_num}, {filled} entries filled, stage 1 takes "
             f"num_candidates_internal={model.config.num_candidates_internal} entries from the cells nearest the query), trained with "
             + (f"{trained_with} keyword candidates." if trained_with else "cells only."),
             f"{len(facts)} facts ({sum(f['split'] == 'bank_only' for f in facts)} bank-only), {len(probes)} paraphrase probes; hit rates over "
             f"the {len(index)} facts whose entry is in the bank, at the prompt's last token, per memory layer."]
    write_result("keyword_candidates", "Keyword candidates on the MiniMind line: the reference model read with cells only and with "
                 "keyword candidates", table, notes, dict(lexical=a.lexical, config=model.config.to_diff_dict()))


if __name__ == "__main__": main()
