"""Rescore the committed exports under the current scorer, in place, and record what changed.

Each export is imported into a scratch store, rescored by `bench store rescore` with a config
of its run (the run key proves the inputs match; methods are never built, so the SAE methods
need no SAE weights), and written back with only the current scorer's rows. The record says,
per export, how many texts kept every score and the largest relative change of perplexity.

    python results/paper/rescore_exports.py --out results/paper/rescore-<scorer>.json
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

from bench.config import load_config
from bench.provenance import git_commit
from bench.report.export import load_rows, read_export, select_rows, write_export
from bench.rescore import rescore
from bench.scoring.fingerprint import scorer_fingerprint
from bench.store import ResultsStore

EXPORTS = {
    "results/paper/exports/test-smollm2-135m.jsonl.gz": "configs/paper.yaml",
    "results/paper/exports/dev-sweep-smollm2-135m.jsonl.gz": "configs/default.yaml",
    "results/paper/exports/dev-sae-smollm2-135m.jsonl.gz": "configs/default.yaml",
    "results/paper/exports/dev-sweep-gemma3-270m.jsonl.gz": "configs/default-gemma3-270m.yaml",
    "results/paper/exports/dev-sae-gemma3-270m.jsonl.gz": "configs/default-gemma3-270m.yaml",
    "results/models/default-gemma3-270m.jsonl.gz": "configs/default-gemma3-270m.yaml",
}
"""Each export and a config of its run (model, split, task, decoding and data decide the run
key; the methods and grid do not)."""


def compare(old: list, new: list) -> dict[str, object]:
    """Texts whose scores all stayed, and the largest relative change of a float score."""
    before = {(r.gen_key, r.scenario_id): r for r in old}
    same, largest, changed = 0, 0.0, {}
    for row in new:
        was = before[(row.gen_key, row.scenario_id)]
        assert was.text == row.text
        same += was.scores == row.scores
        for key, value in row.scores.items():
            if was.scores[key] != value and not (
                isinstance(value, float) and math.isnan(value) and math.isnan(was.scores[key])
            ):
                changed[key] = changed.get(key, 0) + 1
                if isinstance(value, float):
                    largest = max(largest, abs(value - was.scores[key]) / abs(was.scores[key]))
    return {"texts": len(new), "all_scores_equal": same, "changed": changed, "max_rel": largest}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    scorer = scorer_fingerprint()
    record: dict[str, object] = {
        "command": f"python results/paper/rescore_exports.py --out {args.out}",
        "git_commit": git_commit(),
        "scorer": scorer,
        "exports": {},
    }
    with tempfile.TemporaryDirectory() as scratch:
        for export, config_path in EXPORTS.items():
            started = time.perf_counter()
            header, old = read_export(export)
            if {row.scorer for row in old} == {scorer}:
                print(f"{export}: already scored by {scorer}")
                continue
            store = str(Path(scratch) / Path(export).name.replace(".jsonl.gz", ".sqlite"))
            with ResultsStore(store) as results:
                results.merge(old)
            summary = rescore(load_config(config_path, ["methods=[none]"], store=store))
            rows = select_rows(load_rows(store), store, scorer, None, ())
            assert len(rows) == len(old) and summary.other_runs == 0, (export, summary)
            write_export(rows, export, source=header["source"])
            record["exports"][export] = {  # type: ignore[index]
                "config": config_path,
                "old_scorer": sorted({row.scorer for row in old}),
                "rescored": summary.rescored,
                "seconds": round(time.perf_counter() - started, 1),
                **compare(old, rows),
            }
            print(json.dumps({export: record["exports"][export]}))  # type: ignore[index]
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
