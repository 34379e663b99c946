"""How good the scorer is: held-out splits of the project's data and external data.

- `heldout`: the level-labeled classifier texts held out from training.
- `decoys-heldout`: held-out decoys, texts that use other levels' signature verbs as framing
  (a keyword matcher fails them).
- `no-verb-heldout`: held-out texts (classifier and decoys) that contain no signature verb of
  any level (the level is carried by wording alone).
- `task-presence-heldout`: does the detector tell texts that set a task from those that don't.
- `independent-<kind>`, `independent<writer>-<kind>`: texts by writers who never saw the
  training data: plain, no-verb and decoy texts (a check that the held-out splits do not
  flatter the scorer).
- `generated-heldout`: annotated generations of held-out exemplar scenarios, read as the
  benchmark reads them (six levels, or 'none' when no new task is set), with task presence.
- `annotations-dev`: the default run's annotated generations (dev scenarios; never trained
  on, never used to choose a design), read the same way.
- one entry per external CSV (`text`, `level`), read in place, never trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score, f1_score

from bench.data.levels import LEVELS, has_signature_verb, parse_level
from bench.data.roles import (
    NO_TASK_LABEL,
    load_classifier_data,
    load_decoys,
    load_generated,
    load_independent_test,
    load_labeled_csv,
    load_no_task,
)
from bench.data.scenarios import load_scenarios, packaged_path, read_jsonl
from bench.errors import DataError
from bench.scoring.bloom import LEVEL_NAMES, LevelReader
from bench.scoring.embeddings import sentence_encoder
from bench.scoring.relevance import cosine
from bench.scoring.score import restates, sets_task

EXTERNAL_CANDIDATE = Path("../shared/data/bloom-external")
"""Where this project's development machines keep external human-labeled Bloom data."""


def default_external_dir() -> Path | None:
    """The external validation folder when this machine has one, else None."""
    return EXTERNAL_CANDIDATE if EXTERNAL_CANDIDATE.is_dir() else None


def external_folder(given: str | Path | None) -> Path | None:
    """The external validation folder: the one given (it must exist), else this machine's
    default when it has one."""
    if given is None:
        return default_external_dir()
    if not Path(given).is_dir():
        raise DataError(f"external folder not found: {given}")
    return Path(given)


def classification_metrics(
    truth: list[str], predicted: list[str], labels: list[str] | None = None
) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-label F1 (default labels: the six levels)."""
    labels = labels or LEVEL_NAMES
    per_label = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    return {
        "n": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(
            f1_score(truth, predicted, labels=labels, average="macro", zero_division=0)
        ),
        "f1_per_label": {label: float(f) for label, f in zip(labels, per_label, strict=True)},
    }


def evaluate_levels(scorer: LevelReader, texts: list[str], levels: list[str]) -> dict[str, Any]:
    predicted = [LEVELS[i].value for i in scorer.level_probs(texts).argmax(axis=1)]
    return classification_metrics(levels, predicted)


def has_no_signature_verb(text: str) -> bool:
    return not any(has_signature_verb(text, level) for level in LEVELS)


def heldout_sets() -> dict[str, tuple[list[str], list[str]]]:
    """The project's held-out level-labeled sets: name -> (texts, levels)."""
    plain = load_classifier_data("heldout")
    decoys = load_decoys("heldout")
    texts = list(plain["text"]) + list(decoys["text"])
    levels = list(plain["level"]) + list(decoys["level"])
    no_verb = [(t, lv) for t, lv in zip(texts, levels, strict=True) if has_no_signature_verb(t)]
    sets = {
        "heldout": (list(plain["text"]), list(plain["level"])),
        "decoys-heldout": (list(decoys["text"]), list(decoys["level"])),
        "no-verb-heldout": ([t for t, _ in no_verb], [lv for _, lv in no_verb]),
    }
    independent = load_independent_test()
    for writer, kind in sorted({(r["writer"], r["kind"]) for r in independent}):
        rows = [r for r in independent if (r["writer"], r["kind"]) == (writer, kind)]
        name = f"independent-{kind}" if writer == "1" else f"independent{writer}-{kind}"
        sets[name] = ([r["text"] for r in rows], [r["level"] for r in rows])
    return sets


def generated_sets() -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Annotated generations, read with 'none': name -> (texts, their scenarios' questions,
    annotated levels or 'none')."""
    questions = {r["id"]: r["question"] for r in load_scenarios()}
    questions |= {r["id"]: r["question"] for r in load_scenarios("exemplar")}
    heldout = load_generated("heldout")
    dev = read_jsonl(packaged_path("annotations.jsonl"), ("scenario_id", "text", "label"))
    return {
        "generated-heldout": (
            list(heldout["text"]),
            [questions[i] for i in heldout["scenario_id"]],
            list(heldout["level"]),
        ),
        "annotations-dev": (
            [r["text"] for r in dev],
            [questions[r["scenario_id"]] for r in dev],
            [r["label"]["level"] for r in dev],
        ),
    }


def read_levels(scorer: LevelReader, texts: list[str], questions: list[str]) -> list[str]:
    """What the benchmark reads in each text: its level when it sets a new task (the task
    detector says so and it does not restate its scenario's question), else 'none'."""
    encoder = sentence_encoder()
    embeddings = encoder.encode(texts)
    restating = cosine(embeddings, encoder.encode(questions))
    levels = scorer.level_probs(texts, embeddings).argmax(axis=1)
    tasks = scorer.task_probs(texts, embeddings)
    return [
        LEVELS[level].value if sets_task(task, text) and not restates(similarity) else NO_TASK_LABEL
        for text, level, task, similarity in zip(texts, levels, tasks, restating, strict=True)
    ]


def generated_metrics(truth: list[str], read: list[str]) -> dict[str, Any]:
    """Seven-way level metrics plus the precision and recall of 'sets a new task'."""
    metrics = classification_metrics(truth, read, [*LEVEL_NAMES, NO_TASK_LABEL])
    predicted = [r != NO_TASK_LABEL for r in read]
    actual = [t != NO_TASK_LABEL for t in truth]
    hits = sum(p and a for p, a in zip(predicted, actual, strict=True))
    metrics["task_precision"] = hits / sum(predicted) if any(predicted) else float("nan")
    metrics["task_recall"] = hits / sum(actual) if any(actual) else float("nan")
    return metrics


def validate(scorer: LevelReader, external_dir: Path | None) -> dict[str, Any]:
    """Metrics on every held-out set and on every CSV in `external_dir` (if given)."""
    report: dict[str, Any] = {}
    for name, (texts, levels) in heldout_sets().items():
        if texts:
            report[name] = evaluate_levels(scorer, texts, levels)
    positives = list(load_classifier_data("heldout")["text"]) + list(load_decoys("heldout")["text"])
    negatives = list(load_no_task("heldout")["text"])
    probs = scorer.task_probs(positives + negatives)
    truth = ["task"] * len(positives) + ["no task"] * len(negatives)
    predicted = ["task" if p >= 0.5 else "no task" for p in probs]
    report["task-presence-heldout"] = classification_metrics(truth, predicted, ["task", "no task"])
    for name, (texts, questions, levels) in generated_sets().items():
        if texts:
            report[name] = generated_metrics(levels, read_levels(scorer, texts, questions))
    if external_dir is not None:
        for csv_path in sorted(external_dir.glob("*.csv")):
            data = load_labeled_csv(csv_path)
            report[csv_path.name] = evaluate_levels(
                scorer, list(data["text"]), [parse_level(lv).value for lv in data["level"]]
            )
    return report
