"""Aggregates: cuts come from the control, the composite follows its definition."""

from __future__ import annotations

import pytest

from bench.report.aggregate import aggregate, model_cuts
from bench.store import GenerationRow


def _row(
    method: str, level: str, on_target: bool, ppl: float, relevance: float, i: int
) -> GenerationRow:
    return GenerationRow(
        cell_hash=f"{method}{level}",
        scenario_id=f"s{i}",
        model="m",
        weights_sha256="0" * 64,
        method=method,
        hparams={},
        level=level,
        seed=0,
        split="dev",
        prompt=[],
        text="t",
        n_tokens=10,
        finished=True,
        scores={
            "pred_level": level if on_target else "Remember",
            "on_target": on_target,
            "level_distance": 0 if on_target else 3,
            "perplexity": ppl,
            "repetition": 0.0,
            "distinct_2": 1.0,
            "prompt_copy": 0.0,
            "relevance": relevance,
        },
        decoding={},
        versions={},
        git_commit="c",
        config_hash="h",
    )


def test_cuts_come_from_the_control_rows() -> None:
    control = [_row("none", "Create", False, 10.0 + i, 0.5, i) for i in range(20)]
    steered = [_row("steer", "Create", True, 1000.0, 0.5, i) for i in range(20)]
    cuts = model_cuts(control + steered)["m"]
    assert cuts.source == "control"
    assert cuts.max_perplexity == pytest.approx(10 + 0.95 * 19)  # control's 95th percentile
    (none_cell, steer_cell) = aggregate(control + steered)
    assert none_cell.method == "none" and none_cell.bloom_exact.value == 0.0
    assert steer_cell.bloom_exact.value == 1.0
    assert steer_cell.fluent.value == 0.0  # perplexity far beyond the control's
    assert steer_cell.composite.value == 0.0  # zero if any criterion is zero


def test_composite_is_the_harmonic_mean_of_rates() -> None:
    control = [_row("none", "Apply", i % 2 == 0, 10.0, 0.5, i) for i in range(10)]
    (cell,) = aggregate(control)
    # on-target 0.5; every text is fluent and relevant (all equal to the control's cuts)
    assert cell.bloom_exact.value == 0.5 and cell.fluent.value == 1.0
    assert cell.composite.value == 0.5  # the share of texts on target, fluent and relevant
    assert cell.composite.low <= cell.composite.value <= cell.composite.high
    assert cell.predicted["Apply"] == 5 and cell.predicted["Remember"] == 5
