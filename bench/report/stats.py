"""Estimates with 95% intervals that resample scenarios, and paired differences.

Rows of one scenario (its seeds and target levels) are correlated, so intervals come from a
cluster bootstrap: scenarios are drawn with replacement and carry all their rows. Copying rows
within a scenario does not narrow an interval. For a proportion the interval is widened to at
least the Wilson score interval over the number of scenarios, so 0/n and n/n get an honest,
non-zero width. Differences between methods are paired: the same scenario, level and seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054
CONFIDENCE = 0.95
BOOTSTRAP_RESAMPLES = 2000


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its 95% interval."""

    value: float
    low: float
    high: float
    n: int
    """Rows behind the estimate."""
    clusters: int
    """Scenarios behind the estimate (the unit the interval resamples)."""

    def __str__(self) -> str:
        if math.isnan(self.value):
            return "n/a"
        return f"{self.value:.2f} [{self.low:.2f}, {self.high:.2f}]"


def wilson(successes: float, n: int) -> tuple[float, float]:
    """Wilson score 95% interval for a proportion successes/n (n > 0)."""
    p = successes / n
    denominator = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denominator
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _cluster_index(clusters: Sequence[Hashable]) -> tuple[np.ndarray, int]:
    codes: dict[Hashable, int] = {}
    index = np.array([codes.setdefault(c, len(codes)) for c in clusters], dtype=int)
    return index, len(codes)


def cluster_bootstrap(
    values: Sequence[float] | np.ndarray,
    clusters: Sequence[Hashable],
    statistic: Callable[[np.ndarray], float] | None = None,
    proportion: bool = False,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Percentile interval from resampling clusters (default statistic: the row mean).

    `values` may be 2-D (one row per observation, e.g. pairs for a correlation) when a
    `statistic` of such rows is given; a row with a NaN is left out. A `proportion` (0/1
    values, the mean) also gets at least the Wilson interval over the number of clusters."""
    data = np.asarray(values, dtype=float)
    if len(data) != len(clusters):
        raise ValueError("need one cluster label per value")
    if data.ndim == 2 and statistic is None:
        raise ValueError("2-D values need a statistic")
    keep = ~np.isnan(data) if data.ndim == 1 else ~np.isnan(data).any(axis=1)
    data, labels = data[keep], [c for c, k in zip(clusters, keep, strict=True) if k]
    if len(data) == 0:
        return Estimate(math.nan, math.nan, math.nan, 0, 0)
    index, k = _cluster_index(labels)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, k, size=(n_resamples, k))
    if statistic is None:
        sums = np.bincount(index, weights=data, minlength=k)
        counts = np.bincount(index, minlength=k)
        stats = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
        value = float(data.mean())
    else:
        members = [data[index == c] for c in range(k)]
        stats = np.array([statistic(np.concatenate([members[c] for c in pick])) for pick in picks])
        value = float(statistic(data))
    low, high = (float(q) for q in np.quantile(stats, [0.025, 0.975]))
    if proportion:
        if statistic is not None or not np.isin(data, (0.0, 1.0)).all():
            raise ValueError("a proportion is the mean of 0/1 values")
        w_low, w_high = wilson(value * k, k)
        low, high = min(low, w_low), max(high, w_high)
    return Estimate(value, low, high, len(data), k)


def paired_difference(
    a: Sequence[float], b: Sequence[float], clusters: Sequence[Hashable], seed: int = 0
) -> Estimate:
    """Mean of a - b over matched pairs, interval by resampling clusters of pairs.

    When every resample gives one value (e.g. both arms 0 on every pair) and the arms are
    proportions, the interval is the conservative difference of their Wilson intervals."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError("paired arms must have the same length")
    estimate = cluster_bootstrap(x - y, clusters, seed=seed)
    binary = np.isin(x, (0.0, 1.0)).all() and np.isin(y, (0.0, 1.0)).all()
    if estimate.n and estimate.low == estimate.high and binary:
        k = estimate.clusters
        a_low, a_high = wilson(x.mean() * k, k)
        b_low, b_high = wilson(y.mean() * k, k)
        return Estimate(estimate.value, a_low - b_high, a_high - b_low, estimate.n, k)
    return estimate
