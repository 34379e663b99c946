"""Model-free fluency of texts: repeated word 3-grams and distinct-2 (means over texts)."""

import datasets
import evaluate

from bench.scoring.fluency import distinct_n, repetition_rate

_DESCRIPTION = "Mean repeated-3-gram rate and mean distinct-2 of generated texts."
_KWARGS = """
Args:
    predictions: generated texts.
Returns:
    repetition (0 = no repeated 3-grams), distinct_2 (1 = all 2-grams distinct).
"""


class TextFluency(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions: list[str]) -> dict[str, float]:
        n = max(len(predictions), 1)
        return {
            "repetition": sum(repetition_rate(t) for t in predictions) / n,
            "distinct_2": sum(distinct_n(t, 2) for t in predictions) / n,
        }
