"""Scorer designs compared on held-out data (the datasheet's table comes from here).

Each design is a `ClassifierSettings` of the level classifier. The choice rule, fixed before
looking at external data: the highest mean macro-F1 over the project's three held-out sets
(plain, decoys, no-verb). The independent test set and external human-labeled data are
reported beside it, never used to choose.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.scoring.bloom import DEFAULT_LEVEL_SETTINGS, ClassifierSettings, train_scorer
from bench.scoring.validate import validate

DESIGNS: dict[str, ClassifierSettings] = {
    "verbs in the whole text, no decoy training": ClassifierSettings(train_on_decoys=False),
    "verbs in the whole text + decoy training": ClassifierSettings(),
    "verbs and clause embedding (task clause)": DEFAULT_LEVEL_SETTINGS,
    "verbs, n-grams, clause embedding (task clause)": ClassifierSettings(
        verb_scope="clause", lexical_scope="clause", clause_weight=1.0
    ),
    "text embedding only + decoy training": ClassifierSettings(verb_weight=0, lexical_weight=0),
    "text and clause embeddings only": ClassifierSettings(
        verb_weight=0, lexical_weight=0, clause_weight=1.0
    ),
}
SELECTION_SETS = ("heldout", "decoys-heldout", "no-verb-heldout")


def compare(external_dir: Path | None) -> list[dict[str, Any]]:
    """One row per design: macro-F1 on every validation set, the selection score, chosen."""
    rows = []
    for name, settings in DESIGNS.items():
        report = validate(train_scorer(settings), external_dir)
        report.pop("task-presence-heldout")  # the task detector is the same in every design
        selection = sum(report[s]["macro_f1"] for s in SELECTION_SETS) / len(SELECTION_SETS)
        rows.append(
            {
                "design": name,
                "selection": selection,
                "chosen": settings == DEFAULT_LEVEL_SETTINGS,
                **{data: metrics["macro_f1"] for data, metrics in report.items()},
            }
        )
    return rows
