"""How good the Bloom scorer is: held-out split and external human-labeled data.

External CSVs (columns `text`, `level`) are read in place and never trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sklearn.metrics import accuracy_score, f1_score

from bench.data.levels import LEVELS
from bench.data.roles import load_classifier_data, load_labeled_csv
from bench.scoring.bloom import LEVEL_NAMES, BloomClassifier

DEFAULT_EXTERNAL_DIR = Path("../shared/data/bloom-external")


def classification_metrics(truth: list[str], predicted: list[str]) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-level F1 over the six levels."""
    per_level = f1_score(truth, predicted, labels=LEVEL_NAMES, average=None, zero_division=0)
    return {
        "n": len(truth),
        "accuracy": float(accuracy_score(truth, predicted)),
        "macro_f1": float(
            f1_score(truth, predicted, labels=LEVEL_NAMES, average="macro", zero_division=0)
        ),
        "f1_per_level": {level.value: float(f) for level, f in zip(LEVELS, per_level, strict=True)},
    }


def evaluate_on(classifier: BloomClassifier, texts: list[str], levels: list[str]) -> dict[str, Any]:
    predicted = [level.value for level in classifier.predict(texts)]
    return classification_metrics(levels, predicted)


def validate(
    classifier: BloomClassifier,
    external_dir: Path | None = DEFAULT_EXTERNAL_DIR,
    data_path: str | Path | None = None,
) -> dict[str, Any]:
    """Metrics on the held-out split and on every CSV in `external_dir` (if it exists)."""
    heldout = load_classifier_data("heldout", data_path)
    report: dict[str, Any] = {}
    if len(heldout):
        report["heldout"] = evaluate_on(classifier, list(heldout["text"]), list(heldout["level"]))
    if external_dir is not None and external_dir.is_dir():
        for csv_path in sorted(external_dir.glob("*.csv")):
            data = load_labeled_csv(csv_path)
            report[csv_path.name] = evaluate_on(classifier, list(data["text"]), list(data["level"]))
    return report
