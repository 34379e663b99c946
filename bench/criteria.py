"""The binary criteria a text is judged by, from its stored scores.

On target, relevant and leaking are decided per text by the scorer. Fluency needs cuts from a
control: a text is fluent when its perplexity (given the control prompt) and its repetition are
at most the 95th percentiles of the control texts of the same run. Success is all of them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FLUENCY_QUANTILE = 0.95

SCORE_KEYS = frozenset(
    {
        "pred_level",
        "on_target",
        "level_distance",
        "sets_task",
        "new_task",
        "leaks",
        "relevant",
        "perplexity",
        "repetition",
    }
)
"""The scores every stored row carries (the scorer writes them; the criteria and the report
read them). A row without one was scored by an older bench."""


@dataclass(frozen=True)
class Cuts:
    """Fluency thresholds from a run's control texts."""

    max_perplexity: float
    max_repetition: float
    n_control: int

    @classmethod
    def from_control(cls, scores: Sequence[dict[str, Any]]) -> Cuts:
        """Cuts from the scores of control texts (at least one)."""
        if not scores:
            raise ValueError("fluency cuts need at least one control text")
        ppl = [s["perplexity"] for s in scores if not math.isnan(s["perplexity"])]
        return cls(
            max_perplexity=float(np.quantile(ppl, FLUENCY_QUANTILE)) if ppl else math.inf,
            max_repetition=float(np.quantile([s["repetition"] for s in scores], FLUENCY_QUANTILE)),
            n_control=len(scores),
        )

    def fluent(self, scores: dict[str, Any]) -> bool:
        ppl = scores["perplexity"]
        return (
            not math.isnan(ppl)
            and ppl <= self.max_perplexity
            and scores["repetition"] <= self.max_repetition
        )


def success(scores: dict[str, Any], cuts: Cuts) -> bool:
    """A new task at the target level, fluent, relevant and not leaking."""
    return bool(
        scores["on_target"] and cuts.fluent(scores) and scores["relevant"] and not scores["leaks"]
    )
