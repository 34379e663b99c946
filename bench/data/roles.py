"""Labeled data roles: `exemplars` (methods learn from them) and `classifier` (the scorer does).

Each role ships as JSONL in `bench/data/`; a user can replace either with a CSV that has
`text` and `level` columns.
"""

from __future__ import annotations

import csv
from pathlib import Path

import datasets

from bench.data.levels import parse_level
from bench.data.scenarios import packaged_path, read_jsonl
from bench.errors import DataError, UnknownNameError

EXEMPLAR_FIELDS = ("id", "scenario_key", "subject", "question", "student_answer", "level", "text")
CLASSIFIER_FIELDS = ("id", "subject", "form", "level", "text", "split")
CLASSIFIER_SPLITS = ("train", "heldout")


def load_labeled_csv(path: str | Path) -> datasets.Dataset:
    """A user's CSV with `text` and `level` columns (levels by name, any case)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"CSV not found: {path}")
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in ("text", "level") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: missing column(s) {', '.join(missing)} (need text, level)")
        rows = []
        for number, row in enumerate(reader, start=2):
            try:
                level = parse_level(row["level"] or "")
            except UnknownNameError as error:
                raise DataError(f"{path}:{number}: {error}") from None
            rows.append({"id": f"csv-{number - 1}", "text": row["text"], "level": level.value})
    if not rows:
        raise DataError(f"{path}: no rows")
    return datasets.Dataset.from_list(rows)


def _load(name: str, fields: tuple[str, ...], path: str | Path | None) -> datasets.Dataset:
    if path is not None and str(path).lower().endswith(".csv"):
        return load_labeled_csv(path)
    rows = read_jsonl(Path(path) if path else packaged_path(name), fields)
    for row in rows:
        row["level"] = parse_level(row["level"]).value
    return datasets.Dataset.from_list([{k: row[k] for k in fields} for row in rows])


def load_exemplars(path: str | Path | None = None) -> datasets.Dataset:
    """Teacher feedback labeled by level, for separate scenarios (what methods learn from)."""
    return _load("exemplars.jsonl", EXEMPLAR_FIELDS, path)


def load_classifier_data(
    split: str | None = None, path: str | Path | None = None
) -> datasets.Dataset:
    """Labeled texts for training ('train') and validating ('heldout') the Bloom scorer.

    A user CSV has no split column: all of it is used for training.
    """
    if split is not None and split not in CLASSIFIER_SPLITS:
        raise DataError(f"unknown split {split!r}; choose from: {', '.join(CLASSIFIER_SPLITS)}")
    data = _load("classifier.jsonl", CLASSIFIER_FIELDS, path)
    if split is None or "split" not in data.column_names:
        return data if split != "heldout" else data.select([])
    return data.filter(lambda row: row["split"] == split)
