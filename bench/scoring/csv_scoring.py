"""Score a user's CSV with every per-text criterion the benchmark uses.

Always: the level read (and each level's probability), task presence, leakage, repetition.
With question and answer columns: relevance by retrieval among the CSV's distinct scenarios,
and whether the text restates the question. With a model too: perplexity given the control
prompt. With cuts from a store's control run: the fluent flag. With a target column: on
target, and (given the fluent flag) success. What could not be computed is left empty.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.criteria import Cuts, success
from bench.data.files import DEFAULT_ENCODING, read_csv
from bench.data.levels import LEVELS, parse_level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario
from bench.data.tasks import Task
from bench.errors import DataError, UnknownNameError
from bench.retrieval import RELEVANCE_TOP_K
from bench.scoring.score import GenerationScorer

EMPTY = "empty text: not scored"
"""The `status` of a row whose text is empty or whitespace (no level is read into nothing)."""
COLUMNS = (
    "status",
    "pred_level",
    *(f"p_{level.value}" for level in LEVELS),
    "task_prob",
    "sets_task",
    "restates_question",
    "new_task",
    "leaks",
    "leak_names_taxonomy",
    "leak_recites",
    "leak_third_person",
    "relevance",
    "relevance_rank",
    "relevant",
    "perplexity",
    "repetition",
    "fluent",
    "on_target",
    "success",
)


@dataclass(frozen=True)
class CsvColumns:
    """Which columns of the CSV hold what."""

    text: str
    question: str | None = None
    answer: str | None = None
    subject: str | None = None
    target: str | None = None


def _read(path: str | Path, columns: CsvColumns, encoding: str) -> list[dict[str, str]]:
    file = Path(path)
    if not file.is_file():
        raise DataError(f"CSV not found: {path}")
    fields, rows = read_csv(file, encoding)
    for name in asdict(columns).values():
        if name is not None and name not in fields:
            raise DataError(f"{path}: no column {name!r} (columns: {', '.join(fields)})")
    if (columns.question is None) != (columns.answer is None):
        raise DataError("give both --question-column and --answer-column, or neither")
    return rows


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def score_csv(
    path: str | Path,
    columns: CsvColumns,
    task: Task,
    lm: Any = None,
    cuts: Cuts | None = None,
    encoding: str = DEFAULT_ENCODING,
) -> tuple[str, dict[str, Any]]:
    """The scored CSV as text, and a note of what was computed with which cuts. Rows with an
    empty text keep their columns, get status `EMPTY` and no score."""
    rows = _read(path, columns, encoding)
    texts = [row[columns.text] or "" for row in rows]
    kept = [i for i, text in enumerate(texts) if text.strip()]
    targets = []
    for number, row in enumerate(rows, start=2):
        if columns.target is None:
            targets.append(None)
            continue
        try:
            targets.append(parse_level(row[columns.target] or ""))
        except UnknownNameError as error:
            raise DataError(f"{path}:{number}: {error}") from None
    scenarios: list[Scenario] = []
    if columns.question is not None and columns.answer is not None:
        ids: dict[tuple[str, str, str], str] = {}
        for row in rows:
            key = (
                row[columns.subject] if columns.subject else "",
                row[columns.question],
                row[columns.answer],
            )
            ids.setdefault(key, f"csv-scenario-{len(ids) + 1}")
            scenarios.append(Scenario(ids[key], *key))
    split = list({s.id: s for s in scenarios}.values())
    scorer = GenerationScorer.build(task, load_exemplars(form=task.form), split)
    texts_kept = [texts[i] for i in kept]
    if not kept:
        scored = []
    elif scenarios:
        scored = scorer.score(
            lm, [scenarios[i] for i in kept], texts_kept, [targets[i] for i in kept]
        )
    else:
        scored = scorer.text_scores(texts_kept)
    scores: list[dict[str, Any] | None] = [None] * len(rows)
    for i, score in zip(kept, scored, strict=True):
        scores[i] = score
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*rows[0].keys(), *COLUMNS] if rows else COLUMNS)
    writer.writeheader()
    for row, score in zip(rows, scores, strict=True):
        if score is None:
            writer.writerow({**row, **{c: "" for c in COLUMNS}, "status": EMPTY})
            continue
        values: dict[str, Any] = {
            "status": "scored",
            **score,
            **{f"p_{k}": v for k, v in score["level_probs"].items()},
        }
        if cuts is not None and "perplexity" in score:
            values["fluent"] = cuts.fluent(score)
            if "on_target" in score:
                values["success"] = success(score, cuts)
        writer.writerow({**row, **{c: _cell(values.get(c)) for c in COLUMNS}})
    note = {
        "rows": len(rows),
        "empty_texts": [i + 2 for i in range(len(rows)) if scores[i] is None],
        "scorer": scorer.fingerprint,
        "relevance": f"own scenario in the top {RELEVANCE_TOP_K} of {len(split)} distinct scenarios"
        if split
        else "not computed (no question/answer columns)",
        "perplexity": "given the control prompt" if lm is not None and split else "not computed",
        "fluency_cuts": asdict(cuts)
        if cuts
        else "none (no --cuts-from store): fluent and success are empty",
    }
    return buffer.getvalue(), note


def note_json(note: dict[str, Any]) -> str:
    return json.dumps(note, indent=2, default=str)
