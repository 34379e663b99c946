"""Aggregates with bootstrap 95% intervals."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap interval."""

    value: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def bootstrap(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[[np.ndarray], float] = np.mean,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap over the rows of `values` (1-D, or 2-D with one row per sample)."""
    data = np.asarray(values, dtype=float)
    n = len(data)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(n_resamples, n))
    stats = np.array([statistic(data[idx]) for idx in picks])
    alpha = (1 - confidence) / 2
    low, high = np.quantile(stats, [alpha, 1 - alpha])
    return Estimate(float(statistic(data)), float(low), float(high), n)


def harmonic_composite(criteria: np.ndarray) -> np.ndarray:
    """Per row, the harmonic mean of its criteria (columns in [0, 1]); 0 if any is 0.

    Scoring each text on its own means a method cannot trade criteria across texts: a text
    that hits the level by reciting the instruction (not fluent) counts 0, whatever its
    neighbours do. With 0/1 criteria a row is 1 exactly when it meets all of them.
    """
    values = np.asarray(criteria, dtype=float)
    safe = np.where(values > 0, values, 1.0)
    harmonic = values.shape[1] / np.sum(1.0 / safe, axis=1)
    return np.where(np.all(values > 0, axis=1), harmonic, 0.0)
