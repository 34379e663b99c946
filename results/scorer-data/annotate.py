"""How `bench/data/generated.jsonl` was made from `runs/scorer-data.sqlite`.

    python results/scorer-data/annotate.py sample runs/scorer-data.sqlite --out runs/annotate \
        --name w1 --methods none,prompting,few_shot
    python results/scorer-data/annotate.py sample runs/scorer-data.sqlite --out runs/annotate \
        --name w2 --methods caa,actadd,query_sae,align_sae --first-id 1001
    # annotators A and B label runs/annotate/packet-*.jsonl blind (texts and scenarios only)
    python results/scorer-data/annotate.py disagreements runs/annotate --name w1   # (and w2)
    # annotator C labels runs/annotate/adjudicate-*.jsonl
    python results/scorer-data/annotate.py merge runs/annotate --out bench/data/generated.jsonl

`sample` draws the same number of texts from every (method setting, target level) cell,
drops texts that repeat one already drawn or any text of the project's other data roles,
shuffles them and writes blind packets (an item id, the scenario, the text: no method, no
target). `merge` takes each label from A and B where they agree and from C where they don't
(the majority of three; C decides a three-way split), keeps every annotator's labels, and
splits by scenario: every fifth exemplar scenario (in the split's order) is held out.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
from collections import defaultdict
from pathlib import Path

from bench.data.roles import (
    load_classifier_data,
    load_decoys,
    load_exemplars,
    load_independent_test,
    load_no_task,
)
from bench.data.scenarios import load_scenarios

LABELS = ("level", "restates", "leaks", "on_topic", "fluent", "usable")
DECIDING = ("level", "leaks", "on_topic", "fluent", "usable")
"""Labels on which a disagreement between A and B goes to C (as for annotations.jsonl)."""
PACKETS = 4
HELDOUT_EVERY = 5


def _normalized(text: str) -> str:
    return " ".join(text.lower().split())


def _other_roles() -> set[str]:
    texts = [*load_exemplars()["text"], *load_classifier_data()["text"], *load_decoys()["text"]]
    texts += [*load_no_task()["text"], *load_independent_test()["text"]]
    scenarios = load_scenarios()
    texts += [*scenarios["question"], *scenarios["student_answer"]]
    return {_normalized(t) for t in texts}


def sample(
    store: Path, out: Path, name: str, methods: list[str], first_id: int, per_cell: int, seed: int
) -> None:
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT scenario_id, method, hparams, level, seed, text FROM generations "
            f"WHERE split = 'exemplar' AND method IN ({','.join('?' * len(methods))}) "
            "ORDER BY method, hparams, level, scenario_id",
            methods,
        ).fetchall()
    cells: dict[tuple[str, str, str], list[tuple]] = defaultdict(list)
    for row in rows:
        cells[row[1], row[2], row[3]].append(row)
    rng = random.Random(seed)
    seen = _other_roles() | {
        _normalized(row["text"]) for path in out.glob("key-*.jsonl") for row in _jsonl(path)
    }
    drawn = []
    for key in sorted(cells):
        candidates = cells[key][:]
        rng.shuffle(candidates)
        taken = 0
        for scenario_id, method, hparams, level, row_seed, text in candidates:
            if taken == per_cell or not text.strip():
                break
            if _normalized(text) in seen:
                continue
            seen.add(_normalized(text))
            taken += 1
            drawn.append(
                {
                    "scenario_id": scenario_id,
                    "method": method,
                    "hparams": json.loads(hparams),
                    "target": level,
                    "seed": row_seed,
                    "text": text,
                }
            )
    rng.shuffle(drawn)
    scenarios = {r["id"]: r for r in load_scenarios("exemplar")}
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"key-{name}.jsonl").open("w") as key:
        for number, row in enumerate(drawn, start=first_id):
            key.write(json.dumps({"id": f"gen-{number:04d}", **row}) + "\n")
    for packet in range(PACKETS):
        with (out / f"packet-{name}-{packet + 1}.jsonl").open("w") as handle:
            for number, row in enumerate(drawn, start=first_id):
                if (number - 1) % PACKETS != packet:
                    continue
                scenario = scenarios[row["scenario_id"]]
                item = {
                    "id": f"gen-{number:04d}",
                    "subject": scenario["subject"],
                    "question": scenario["question"],
                    "student_answer": scenario["student_answer"],
                    "text": row["text"],
                }
                handle.write(json.dumps(item) + "\n")
    print(f"{name}: {len(drawn)} texts from {len(cells)} cells in {PACKETS} packets under {out}")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _labels(folder: Path, annotator: str) -> dict[str, dict]:
    return {
        row["id"]: {name: row[name] for name in LABELS}
        for path in sorted(folder.glob(f"labels-{annotator}-*.jsonl"))
        for row in _jsonl(path)
    }


def disagreements(folder: Path, name: str) -> None:
    """Items labeled by A and B that differ on a deciding label and have no C label yet."""
    a, b, c = (_labels(folder, annotator) for annotator in "ABC")
    items = [row for path in sorted(folder.glob("packet-*.jsonl")) for row in _jsonl(path)]
    labeled = [i for i in items if i["id"] in a and i["id"] in b]
    split = [
        i
        for i in labeled
        if i["id"] not in c and any(a[i["id"]][f] != b[i["id"]][f] for f in DECIDING)
    ]
    split.sort(key=lambda item: item["id"])
    with (folder / f"adjudicate-{name}.jsonl").open("w") as handle:
        handle.writelines(json.dumps(item) + "\n" for item in split)
    print(f"{len(split)} of {len(labeled)} labeled items to adjudicate ({len(items)} in all)")


def merge(folder: Path, out: Path) -> None:
    a, b, c = (_labels(folder, name) for name in "ABC")
    order = [r["id"] for r in load_scenarios("exemplar")]
    heldout = {s for i, s in enumerate(order) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1}
    with out.open("w") as handle:
        for row in sorted(
            (row for path in folder.glob("key-*.jsonl") for row in _jsonl(path)),
            key=lambda row: row["id"],
        ):
            first, second = a[row["id"]], b[row["id"]]
            disputed = any(first[f] != second[f] for f in DECIDING)
            if disputed and row["id"] not in c:
                raise SystemExit(f"{row['id']}: A and B differ and C has no label")
            # The majority of three (C decides a three-way split); `restates` without C
            # holds only when both say so.
            both = first["restates"] and second["restates"]
            third = c.get(row["id"], {**first, "restates": both})
            label = {f: first[f] if first[f] == second[f] else third[f] for f in LABELS}
            annotators = {"A": first, "B": second, **({"C": c[row["id"]]} if disputed else {})}
            record = {
                "id": row["id"],
                "scenario_id": row["scenario_id"],
                "scenario_split": "exemplar",
                "model": "smollm2-135m",
                "task": "question",
                "method": row["method"],
                "hparams": row["hparams"],
                "target": row["target"],
                "seed": row["seed"],
                "text": row["text"],
                "label": label,
                "annotators": annotators,
                "split": "heldout" if row["scenario_id"] in heldout else "train",
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    sampler = commands.add_parser("sample")
    sampler.add_argument("store", type=Path)
    sampler.add_argument("--out", type=Path, required=True)
    sampler.add_argument("--name", required=True, help="names this sample's files")
    sampler.add_argument("--methods", required=True, help="comma-separated methods")
    sampler.add_argument("--first-id", type=int, default=1)
    sampler.add_argument("--per-cell", type=int, default=10)
    sampler.add_argument("--seed", type=int, default=0)
    disputes = commands.add_parser("disagreements")
    disputes.add_argument("folder", type=Path)
    disputes.add_argument("--name", required=True, help="names the file to adjudicate")
    merger = commands.add_parser("merge")
    merger.add_argument("folder", type=Path)
    merger.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "sample":
        methods = args.methods.split(",")
        sample(args.store, args.out, args.name, methods, args.first_id, args.per_cell, args.seed)
    elif args.command == "disagreements":
        disagreements(args.folder, args.name)
    else:
        merge(args.folder, args.out)


if __name__ == "__main__":
    main()
