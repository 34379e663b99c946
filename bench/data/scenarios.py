"""Feedback scenarios (question + student answer): what every method generates feedback for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import datasets

from bench.errors import DataError

SPLITS = ("dev", "test")
SCENARIO_FIELDS = ("id", "subject", "question", "student_answer", "answer_type", "split")


@dataclass(frozen=True)
class Scenario:
    """One question and one student's answer to it."""

    id: str
    subject: str
    question: str
    student_answer: str
    answer_type: str = "unknown"
    split: str = "test"

    @classmethod
    def from_row(cls, row: dict) -> Scenario:
        return cls(**{name: row[name] for name in SCENARIO_FIELDS if name in row})


def packaged_path(name: str) -> Path:
    """Path of a JSONL file shipped in `bench/data/`."""
    return Path(str(resources.files("bench.data").joinpath(name)))


def read_jsonl(path: Path, required: tuple[str, ...]) -> list[dict]:
    """Rows of a JSONL file; raises `DataError` naming the file and line of any bad row."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        missing = [name for name in required if name not in row]
        if missing:
            raise DataError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def load_scenarios(split: str | None = None, path: str | Path | None = None) -> datasets.Dataset:
    """Scenarios as a `datasets.Dataset`, optionally one split ('dev' or 'test') only."""
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    rows = read_jsonl(Path(path) if path else packaged_path("scenarios.jsonl"), SCENARIO_FIELDS)
    if split is not None:
        rows = [row for row in rows if row["split"] == split]
    return datasets.Dataset.from_list([{k: row[k] for k in SCENARIO_FIELDS} for row in rows])
