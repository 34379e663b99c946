"""Labeled data roles. Methods learn only from `exemplars`; the scorer only from the
`classifier` role (level-labeled texts, decoys, and texts that set no task).

Each ships as JSONL in `bench/data/`; a user can replace exemplars or the level-labeled
classifier texts with a CSV that has `text` and `level` columns.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import datasets

from bench.data.files import DEFAULT_ENCODING, read_csv
from bench.data.levels import parse_level
from bench.data.scenarios import packaged_path, read_jsonl
from bench.errors import DataError, UnknownNameError

EXEMPLAR_FIELDS = (
    "id",
    "scenario_key",
    "subject",
    "question",
    "student_answer",
    "form",
    "level",
    "text",
)
CLASSIFIER_FIELDS = ("id", "subject", "form", "level", "text", "split")
DECOY_FIELDS = ("id", "subject", "form", "level", "decoy_levels", "text", "split")
NO_TASK_FIELDS = ("id", "subject", "category", "text", "split")
INDEPENDENT_FIELDS = ("id", "writer", "kind", "level", "text")
GENERATED_FIELDS = ("id", "scenario_id", "method", "target", "text", "label", "split")
NO_TASK_LABEL = "none"
"""The annotated level of a generated text that sets no new task."""
CLASSIFIER_SPLITS = ("train", "heldout")

datasets.disable_progress_bars()  # filtering a few hundred rows needs no bar


def load_labeled_csv(path: str | Path, encoding: str = DEFAULT_ENCODING) -> datasets.Dataset:
    """A user's CSV with `text` and `level` columns (levels by name, any case)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"CSV not found: {path}")
    columns, records = read_csv(file, encoding)
    missing = [c for c in ("text", "level") if c not in columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)} (need text, level)")
    rows = []
    for number, row in enumerate(records, start=2):
        try:
            level = parse_level(row["level"] or "")
        except UnknownNameError as error:
            raise DataError(f"{path}:{number}: {error}") from None
        if not row["text"].strip():
            raise DataError(f"{path}:{number}: empty text")
        rows.append({"id": f"csv-{number - 1}", "text": row["text"], "level": level.value})
    if not rows:
        raise DataError(f"{path}: no rows")
    return datasets.Dataset.from_list(rows)


def _load(
    name: str,
    fields: tuple[str, ...],
    path: str | Path | None,
    encoding: str = DEFAULT_ENCODING,
) -> datasets.Dataset:
    if path is not None and str(path).lower().endswith(".csv"):
        return load_labeled_csv(path, encoding)
    rows = read_jsonl(Path(path) if path else packaged_path(name), fields, encoding)
    for number, row in enumerate(rows, start=1):
        if "level" in fields:
            row["level"] = parse_level(row["level"]).value
        if "text" in fields and (not isinstance(row["text"], str) or not row["text"].strip()):
            raise DataError(f"{path or name}: row {number}: the text is empty or not a text")
    return datasets.Dataset.from_list([{k: row[k] for k in fields} for row in rows])


def _split(data: datasets.Dataset, split: str | None) -> datasets.Dataset:
    if split is not None and split not in CLASSIFIER_SPLITS:
        raise DataError(f"unknown split {split!r}; choose from: {', '.join(CLASSIFIER_SPLITS)}")
    if split is None:
        return data
    if "split" not in data.column_names:  # a user CSV: all of it is training data
        return data if split == "train" else data.select([])
    return data.filter(lambda row: row["split"] == split)


def load_exemplars(
    path: str | Path | None = None,
    form: str | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> datasets.Dataset:
    """Texts labeled by level, for separate scenarios (what methods learn from); `form`
    keeps those of one task's kind ('question' or 'feedback') when the data says."""
    data = _load("exemplars.jsonl", EXEMPLAR_FIELDS, path, encoding)
    if "question" not in data.column_names:  # a user CSV: its exemplars have no scenario
        data = data.add_column("scenario_key", list(data["id"]))
        for name in ("subject", "question", "student_answer"):
            data = data.add_column(name, [""] * len(data))
    if form is not None and "form" in data.column_names:
        data = data.filter(lambda row: row["form"] == form)
        if not len(data):
            raise DataError(f"no exemplars of form {form!r} in {path or 'exemplars.jsonl'}")
    return data


def load_classifier_data(
    split: str | None = None, path: str | Path | None = None
) -> datasets.Dataset:
    """Level-labeled texts for training ('train') and validating ('heldout') the scorer."""
    return _split(_load("classifier.jsonl", CLASSIFIER_FIELDS, path), split)


def load_decoys(split: str | None = None) -> datasets.Dataset:
    """Level-labeled texts whose wording uses other levels' signature verbs (decoys)."""
    return _split(_load("decoys.jsonl", DECOY_FIELDS, None), split)


def load_no_task(split: str | None = None) -> datasets.Dataset:
    """Texts that set the student no task (praise, correction, meta-talk, recitation...)."""
    return _split(_load("no_task.jsonl", NO_TASK_FIELDS, None), split)


def load_independent_test() -> datasets.Dataset:
    """Level-labeled texts by writers who never saw the scorer's training data (`writer`;
    kinds: plain, no-verb, decoy); for validation only, never trained on."""
    return _load("independent_test.jsonl", INDEPENDENT_FIELDS, None)


def load_generated(split: str | None = None) -> datasets.Dataset:
    """Texts the embedded model wrote for the exemplars' own scenarios, annotated blind:
    `level` is the annotated level of the task a text sets, or 'none' (no new task)."""
    rows = read_jsonl(packaged_path("generated.jsonl"), GENERATED_FIELDS)
    for row in rows:
        level = row["label"]["level"]
        row["level"] = level if level == NO_TASK_LABEL else parse_level(level).value
    columns = ("id", "scenario_id", "method", "target", "text", "level", "split")
    return _split(datasets.Dataset.from_list([{k: row[k] for k in columns} for row in rows]), split)


def dataset_sha256(data: datasets.Dataset) -> str:
    """sha256 (16 hex) of a dataset's rows: part of every key that the data decides."""
    payload = json.dumps(data.to_list(), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
