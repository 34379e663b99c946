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


def harmonic_composite(rates: np.ndarray) -> float:
    """Harmonic mean of per-criterion rates (columns of a 0/1 matrix); 0 if any rate is 0."""
    means = np.asarray(rates, dtype=float).mean(axis=0)
    if np.any(means <= 0):
        return 0.0
    return float(len(means) / np.sum(1.0 / means))
