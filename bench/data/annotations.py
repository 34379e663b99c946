"""The project's blind annotations of generated texts, read and checked field by field.

Labels follow the datasheet's guide: the level of the task a text sets (or "none"), leakage,
on topic, fluent, usable. The scorer's agreement and the paper's usable rate both read them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.data.files import DEFAULT_ENCODING
from bench.data.levels import parse_level
from bench.data.scenarios import packaged_path, read_jsonl
from bench.errors import DataError

ANNOTATION_FIELDS = (
    "id",
    "scenario_id",
    "split",
    "model",
    "task",
    "method",
    "target",
    "text",
    "label",
)
LABEL_FIELDS = ("level", "leaks", "on_topic", "fluent", "usable")
NO_TASK = "none"


def load_annotations(
    path: str | Path | None = None, encoding: str = DEFAULT_ENCODING
) -> list[dict[str, Any]]:
    """Annotated generations (the project's own by default), checked field by field."""
    source = Path(path) if path else packaged_path("annotations.jsonl")
    rows = read_jsonl(source, ANNOTATION_FIELDS, encoding)
    for number, row in enumerate(rows, start=1):
        if not isinstance(row["text"], str):  # empty is a text a model can write
            raise DataError(f"annotation {number}: text must be a string, got {row['text']!r}")
        label = row["label"]
        if not isinstance(label, dict):
            raise DataError(f"annotation {number}: label must be an object, got {label!r}")
        missing = [f for f in LABEL_FIELDS if f not in label]
        if missing:
            raise DataError(f"annotation {number}: label lacks {', '.join(missing)}")
        if label["level"] != NO_TASK:
            label["level"] = parse_level(label["level"]).value
        row["target"] = parse_level(row["target"]).value
    if not rows:
        raise DataError("no annotations")
    return rows


def annotated_success(row: dict[str, Any]) -> bool:
    label = row["label"]
    return bool(
        label["usable"]
        and label["on_topic"]
        and label["fluent"]
        and not label["leaks"]
        and label["level"] == row["target"]
    )
