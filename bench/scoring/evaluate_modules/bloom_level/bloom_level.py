"""Bloom-level accuracy of predicted vs target levels (exact, within one level, macro-F1)."""

import datasets
import evaluate

from bench.data.levels import parse_level
from bench.scoring.validate import classification_metrics

_DESCRIPTION = (
    "Accuracy, within-one accuracy and macro-F1 between predicted and target Bloom levels."
)
_KWARGS = """
Args:
    predictions: predicted level names (Remember ... Create).
    references: target level names.
Returns:
    accuracy, within_one, macro_f1.
"""


class BloomLevel(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        predicted = [parse_level(p).value for p in predictions]
        truth = [parse_level(r).value for r in references]
        metrics = classification_metrics(truth, predicted)
        within = [
            abs(parse_level(p).index - parse_level(r).index) <= 1
            for p, r in zip(predicted, truth, strict=True)
        ]
        return {
            "accuracy": metrics["accuracy"],
            "within_one": sum(within) / len(within),
            "macro_f1": metrics["macro_f1"],
        }
