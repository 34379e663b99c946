"""How much the choice of held-out documents moves an SAE's CE and KL metrics: the stride the
committed evaluations used (`docs[::n // limit][:limit]`) against `evenly_spaced`, the rule
`bench sae eval --limit` follows now, on the same SAE and activation store.

    python results/sae/sampling_check.py --sae runs/sae/quick-L15-query-topk \
        --store runs/sae/quick-L15-query --limit 10 --out results/sae/sampling-check.json
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from bench.models.loading import load_model
from bench.provenance import git_commit
from bench.sae.activations import evenly_spaced, heldout_documents, load_split
from bench.sae.metrics import evaluate
from bench.sae.registry import load_sae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sae", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--limit", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    sae = load_sae(args.sae)
    lm = load_model(sae.config.model_name)
    docs = heldout_documents(args.store)
    activations = load_split(args.store, "heldout")
    choices = {
        "stride": docs[:: len(docs) // args.limit][: args.limit],
        "evenly_spaced": [docs[i] for i in evenly_spaced(len(docs), args.limit)],
    }
    record: dict[str, object] = {
        "command": f"python results/sae/sampling_check.py --sae {args.sae} --store {args.store}"
        f" --limit {args.limit} --out {args.out}",
        "git_commit": git_commit(),
        "heldout_documents": len(docs),
    }
    for name, chosen in choices.items():
        metrics = evaluate(lm, sae, activations, chosen)
        record[name] = {
            "documents": [doc.id for doc in chosen],
            "sources": dict(Counter(doc.source for doc in chosen)),
            **{k: v for k, v in metrics.items() if k.startswith(("ce_", "kl_"))},
        }
        print(name, json.dumps({k: v for k, v in record[name].items() if k != "documents"}))
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
