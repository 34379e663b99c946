"""Feedback scenarios (question + student answer): what every method generates feedback for."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import datasets

from bench.data.files import DEFAULT_ENCODING, read_text
from bench.errors import DataError

SPLITS = ("dev", "test", "exemplar")
EXEMPLAR_SPLIT = "exemplar"
"""The exemplars' own scenarios: generating the scorer's in-distribution training data
(never dev or test scenarios, which results are read from)."""
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


def read_jsonl(
    path: Path, required: tuple[str, ...], encoding: str = DEFAULT_ENCODING
) -> list[dict]:
    """Rows of a JSONL file; raises `DataError` naming the file and line of any bad row."""
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    rows = []
    for number, line in enumerate(read_text(path, encoding).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{path}:{number}: a JSON object expected, got {type(row).__name__}")
        missing = [name for name in required if name not in row]
        if missing:
            raise DataError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        rows.append(row)
    return rows


def exemplar_scenario_rows() -> list[dict]:
    """One scenario per exemplar scenario, split 'exemplar', taken round-robin over subjects
    (so the first N of them span the subjects)."""
    by_subject: dict[str, dict[str, dict]] = {}
    fields = SCENARIO_FIELDS[1:5]  # subject, question, student_answer, answer_type
    for row in read_jsonl(packaged_path("exemplars.jsonl"), ("scenario_key", *fields)):
        by_subject.setdefault(row["subject"], {}).setdefault(
            row["scenario_key"],
            {"id": row["scenario_key"], **{k: row[k] for k in fields}},
        )
    columns = [list(scenarios.values()) for scenarios in by_subject.values()]
    return [
        {**column[i], "split": EXEMPLAR_SPLIT}
        for i in range(max(map(len, columns)))
        for column in columns
        if i < len(column)
    ]


def load_scenarios(
    split: str | None = None,
    path: str | Path | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> datasets.Dataset:
    """Scenarios as a `datasets.Dataset`, optionally one split ('dev', 'test' or 'exemplar')
    only. The packaged 'exemplar' split is derived from the exemplars' own scenarios."""
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose from: {', '.join(SPLITS)}")
    if split == EXEMPLAR_SPLIT and path is None:
        rows = exemplar_scenario_rows()
    else:
        file = Path(path) if path else packaged_path("scenarios.jsonl")
        rows = read_jsonl(file, SCENARIO_FIELDS, encoding)
        check_scenarios(rows, file)
    if split is not None:
        rows = [row for row in rows if row["split"] == split]
        if not rows:
            raise DataError(f"{path or 'scenarios.jsonl'}: no scenarios of split {split!r}")
    return datasets.Dataset.from_list([{k: row[k] for k in SCENARIO_FIELDS} for row in rows])


def check_scenarios(rows: list[dict], path: Path) -> None:
    """Refuse scenarios a run cannot use: none at all, an id twice, a split not named as
    the harness names them, or a subject, question or answer that is not a non-empty text."""
    if not rows:
        raise DataError(f"{path}: no scenarios")
    seen: set[str] = set()
    for number, row in enumerate(rows, start=1):
        where = f"{path}: scenario {number}"
        for name in ("id", "subject", "question", "student_answer"):
            if not isinstance(row[name], str) or not row[name].strip():
                raise DataError(f"{where}: {name} must be a non-empty text, got {row[name]!r}")
        if row["id"] in seen:
            raise DataError(f"{where}: id {row['id']!r} given twice")
        seen.add(row["id"])
        if row["split"] not in SPLITS:
            raise DataError(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)}")
