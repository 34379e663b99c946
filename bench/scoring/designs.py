"""Scorer designs compared on held-out data (the datasheet's table comes from here).

A design is a way to build the scorer (its level reading and its task detector). The choice
rule, fixed before looking at external data or the dev annotations: the highest mean macro-F1
over the project's four held-out sets (plain, decoys, no-verb, and the annotated generations
of held-out exemplar scenarios read with 'none'), among the designs a fresh machine can train
inside the main job (the scorer is trained, then cached, on every machine that scores; a
logistic regression fits in seconds, the fine-tuned encoder in about 6 minutes on a 2-core
CPU, as long as the main job's generation itself: it is reported, not eligible; this
condition was added once its training time was known). The
independent writers' sets, the dev annotations and external human-labeled data are reported
beside it, never used to choose.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.scoring.bloom import (
    DEFAULT_LEVEL_SETTINGS,
    TASK_SETTINGS,
    ClassifierSettings,
    LevelReader,
    train_scorer,
)
from bench.scoring.clauses import task_clause
from bench.scoring.embeddings import sentence_encoder
from bench.scoring.sevenway import JointClassifier, fine_tuned_encoder, seven_way_training_data
from bench.scoring.validate import validate

_OLD = replace(DEFAULT_LEVEL_SETTINGS, train_on_generated=False)  # the design before this data
_OLD_TASK = replace(TASK_SETTINGS, train_on_generated=False)
_NEW = replace(DEFAULT_LEVEL_SETTINGS, train_on_generated=True)
_NEW_TASK = replace(TASK_SETTINGS, train_on_generated=True)


def _logistic(level: ClassifierSettings, task: ClassifierSettings) -> Callable[[], LevelReader]:
    return lambda: train_scorer(level, task)


DESIGNS: dict[str, Callable[[], LevelReader]] = {
    "verbs in the whole text, no decoy training": _logistic(
        ClassifierSettings(train_on_decoys=False), _OLD_TASK
    ),
    "verbs in the whole text + decoy training": _logistic(ClassifierSettings(), _OLD_TASK),
    "verbs and clause embedding (task clause)": _logistic(_OLD, _OLD_TASK),
    "verbs, n-grams, clause embedding (task clause)": _logistic(
        ClassifierSettings(verb_scope="clause", lexical_scope="clause", clause_weight=1.0),
        _OLD_TASK,
    ),
    "text embedding only + decoy training": _logistic(
        ClassifierSettings(verb_weight=0, lexical_weight=0), _OLD_TASK
    ),
    "verbs and clause embedding + annotated generations": _logistic(_NEW, _NEW_TASK),
    "seven-way LR (levels + no task) + annotated generations": lambda: JointClassifier(_NEW),
    "fine-tuned MiniLM, seven-way + annotated generations": fine_tuned_encoder,
}
CHOSEN = "verbs and clause embedding + annotated generations"
"""The design the benchmark scores with (`DEFAULT_LEVEL_SETTINGS`, `TASK_SETTINGS`)."""
NOT_ELIGIBLE = ("fine-tuned MiniLM, seven-way + annotated generations",)
"""Designs too slow to train inside the main job on a CPU (reported, never chosen)."""
SELECTION_SETS = ("heldout", "decoys-heldout", "no-verb-heldout", "generated-heldout")


def compare(external_dir: Path | None) -> list[dict[str, Any]]:
    """One row per design: training seconds, macro-F1 on every validation set (and task
    precision and recall on the generated sets), the selection score, chosen."""
    # Every logistic-regression design reads the same sentence embeddings: computed once here,
    # so a design's seconds are its own fitting time.
    texts = seven_way_training_data(ClassifierSettings(train_on_generated=True)).texts
    sentence_encoder().encode(texts + [task_clause(text) for text in texts])
    rows = []
    for name, build in DESIGNS.items():
        start = time.perf_counter()
        scorer = build()
        # a cached fine-tune reports the seconds its training took
        seconds = getattr(scorer, "train_seconds", time.perf_counter() - start)
        report = validate(scorer, external_dir)
        report.pop("task-presence-heldout")
        row: dict[str, Any] = {
            "design": name,
            "train_seconds": round(seconds, 1),
            "selection": sum(report[s]["macro_f1"] for s in SELECTION_SETS) / len(SELECTION_SETS),
            "eligible": name not in NOT_ELIGIBLE,
            "chosen": name == CHOSEN,
        }
        for data, metrics in report.items():
            row[data] = metrics["macro_f1"]
            if "task_precision" in metrics:
                row[f"{data} task precision"] = metrics["task_precision"]
                row[f"{data} task recall"] = metrics["task_recall"]
        rows.append(row)
    return rows
