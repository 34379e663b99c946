"""Per-cell aggregates of stored scores, each with a bootstrap 95% interval.

Binary cuts are relative to the unsteered control (`none`) of the same model: a text is
fluent when its perplexity, repetition and prompt copying are at most the control's 95th
percentiles, and relevant when its similarity to the scenario is at least the control's
5th percentile. The composite is the per-text harmonic mean of on-target, fluent and
relevant (0 if any is 0), averaged over texts.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from bench.data.levels import LEVELS
from bench.errors import DataError
from bench.report.stats import Estimate, bootstrap, harmonic_composite
from bench.store import GenerationRow

CONTROL_METHOD = "none"
REQUIRED_SCORES = frozenset(
    {
        "pred_level",
        "on_target",
        "level_distance",
        "perplexity",
        "repetition",
        "prompt_copy",
        "relevance",
    }
)


def scored_rows(rows: list[GenerationRow]) -> list[GenerationRow]:
    """Rows that carry scores; rows scored by an older bench (missing scores) are an error."""
    scored = [row for row in rows if row.scores]
    stale = [row for row in scored if not row.scores.keys() >= REQUIRED_SCORES]
    if stale:
        missing = sorted(REQUIRED_SCORES - stale[0].scores.keys())
        raise DataError(
            f"{len(stale)} stored rows lack the score(s) {', '.join(missing)}: they were written "
            "by an older bench; run again into a new store"
        )
    return scored


@dataclass(frozen=True)
class Cuts:
    """Thresholds that turn raw scores into fluent / relevant."""

    max_perplexity: float
    max_repetition: float
    max_prompt_copy: float
    min_relevance: float
    source: str
    """'control' when taken from the unsteered rows, 'all rows' when there were none."""

    @classmethod
    def from_rows(cls, rows: list[GenerationRow], source: str) -> Cuts:
        ppl = [r.scores["perplexity"] for r in rows if not math.isnan(r.scores["perplexity"])]
        return cls(
            max_perplexity=float(np.quantile(ppl, 0.95)) if ppl else math.inf,
            max_repetition=float(np.quantile([r.scores["repetition"] for r in rows], 0.95)),
            max_prompt_copy=float(np.quantile([r.scores["prompt_copy"] for r in rows], 0.95)),
            min_relevance=float(np.quantile([r.scores["relevance"] for r in rows], 0.05)),
            source=source,
        )

    def fluent(self, scores: dict) -> bool:
        ppl = scores["perplexity"]
        return (
            not math.isnan(ppl)
            and ppl <= self.max_perplexity
            and scores["repetition"] <= self.max_repetition
            and scores["prompt_copy"] <= self.max_prompt_copy
        )

    def relevant(self, scores: dict) -> bool:
        return scores["relevance"] >= self.min_relevance


@dataclass
class CellAggregate:
    """Everything the tables show for one (model, method, hparams, target level)."""

    model: str
    method: str
    hparams: str
    level: str
    n: int
    bloom_exact: Estimate
    bloom_within_one: Estimate
    fluent: Estimate
    perplexity: Estimate
    relevance: Estimate
    prompt_copy: Estimate
    composite: Estimate
    tokens: float
    predicted: dict[str, int] = field(default_factory=dict)
    """Confusion-matrix row: how often each level was predicted."""


def _hparams(row: GenerationRow) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(row.hparams.items())) or "-"


def model_cuts(rows: list[GenerationRow]) -> dict[str, Cuts]:
    """Cuts per model, from its control rows (or from all its rows if it has none)."""
    by_model: dict[str, list[GenerationRow]] = defaultdict(list)
    for row in rows:
        by_model[row.model].append(row)
    cuts = {}
    for model, model_rows in by_model.items():
        control = [r for r in model_rows if r.method == CONTROL_METHOD]
        cuts[model] = Cuts.from_rows(control or model_rows, "control" if control else "all rows")
    return cuts


def aggregate(
    rows: list[GenerationRow], cuts: dict[str, Cuts] | None = None
) -> list[CellAggregate]:
    """One aggregate per (model, method, hparams, level); rows without scores are skipped."""
    scored = scored_rows(rows)
    cuts = cuts or model_cuts(scored)
    groups: dict[tuple[str, str, str, str], list[GenerationRow]] = defaultdict(list)
    for row in scored:
        groups[(row.model, row.method, _hparams(row), row.level)].append(row)
    order = {level.value: level.index for level in LEVELS}
    results = []
    for key in sorted(groups, key=lambda k: (k[0], k[1], k[2], order[k[3]])):
        group = groups[key]
        cut = cuts[key[0]]
        on_target = np.array([float(r.scores["on_target"]) for r in group])
        fluent = np.array([float(cut.fluent(r.scores)) for r in group])
        relevant = np.array([float(cut.relevant(r.scores)) for r in group])
        ppl = np.array([r.scores["perplexity"] for r in group])
        ppl = ppl[~np.isnan(ppl)]
        results.append(
            CellAggregate(
                *key,
                n=len(group),
                bloom_exact=bootstrap(on_target),
                bloom_within_one=bootstrap([float(r.scores["level_distance"] <= 1) for r in group]),
                fluent=bootstrap(fluent),
                perplexity=bootstrap(ppl, statistic=np.median),
                relevance=bootstrap([r.scores["relevance"] for r in group]),
                prompt_copy=bootstrap([r.scores["prompt_copy"] for r in group]),
                composite=bootstrap(
                    harmonic_composite(np.stack([on_target, fluent, relevant], axis=1))
                ),
                tokens=float(np.mean([r.n_tokens for r in group])),
                predicted={
                    level.value: sum(r.scores["pred_level"] == level.value for r in group)
                    for level in LEVELS
                },
            )
        )
    return results


def summarize(rows: list[GenerationRow]) -> tuple[list[CellAggregate], dict[str, Cuts]]:
    """Aggregates and the cuts they used, computed once for every table built from them."""
    cuts = model_cuts(scored_rows(rows))
    return aggregate(rows, cuts), cuts
