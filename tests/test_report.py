"""Aggregates by run: cuts from the run's own control, success per text, intervals that
resample scenarios, paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.report.aggregate import ALL_LEVELS, summarize
from bench.report.stats import cluster_bootstrap, paired_difference, wilson
from bench.store import GenerationRow


def _row(
    method: str,
    level: str,
    scenario: int,
    *,
    on_target: bool = True,
    ppl: float = 10.0,
    relevant: bool = True,
    leaks: bool = False,
    seed: int = 0,
    run_key: str = "run",
) -> GenerationRow:
    role = {"none": "control", "prompting": "prompting"}.get(method, "")
    return GenerationRow(
        cell_hash=f"{run_key}{method}{level}{seed}",
        scenario_id=f"s{scenario}",
        gen_key="g",
        run_key=run_key,
        setting_key=method,
        model="m",
        weights_sha256="0" * 64,
        task="question",
        method=method,
        role=role,
        hparams={},
        fingerprint={},
        level=level,
        seed=seed,
        split="dev",
        prompt=[],
        text="t",
        n_tokens=10,
        finished=True,
        scores={
            "pred_level": level if on_target else "Remember",
            "on_target": on_target,
            "level_distance": 0 if on_target else 3,
            "sets_task": True,
            "new_task": True,
            "leaks": leaks,
            "relevant": relevant,
            "perplexity": ppl,
            "repetition": 0.0,
        },
        scorer="s",
        decoding={},
        versions={},
        git_commit="c",
        config_hash="h",
    )


def _cell(run, method: str, level: str):
    return next(c for c in run.cells if c.method == method and c.level == level)


def test_fluency_cuts_come_from_the_runs_own_control() -> None:
    control = [_row("none", "Create", i, on_target=False, ppl=10.0 + i) for i in range(20)]
    steered = [_row("steer", "Create", i, ppl=1000.0) for i in range(20)]
    (run,) = summarize(control + steered)
    assert run.cuts is not None and run.cuts.max_perplexity == pytest.approx(10 + 0.95 * 19)
    steer = _cell(run, "steer", "Create")
    assert steer.bloom_exact.value == 1.0
    assert steer.fluent.value == 0.0  # far above the control's perplexity
    assert steer.success.value == 0.0  # success needs every criterion, per text


def test_success_is_the_share_of_texts_meeting_every_criterion() -> None:
    """Four criteria, each failed by a different quarter of the texts: success is 1/5 of
    texts, not a mean of rates (which would be 0.8)."""
    rows = [_row("none", "Apply", i, ppl=10.0) for i in range(40)]
    steered = []
    for i in range(40):
        quarter = i % 5
        steered.append(
            _row(
                "steer",
                "Apply",
                i,
                on_target=quarter != 0,
                ppl=1e6 if quarter == 1 else 10.0,
                relevant=quarter != 2,
                leaks=quarter == 3,
            )
        )
    (run,) = summarize(rows + steered)
    cell = _cell(run, "steer", "Apply")
    assert cell.bloom_exact.value == cell.relevant.value == cell.fluent.value == 0.8
    assert cell.leaks.value == 0.2
    assert cell.success.value == pytest.approx(0.2)


def test_runs_are_never_pooled_and_a_run_without_control_says_so() -> None:
    first = [_row("none", "Apply", i) for i in range(5)]
    second = [_row("steer", "Apply", i, run_key="other") for i in range(5)]
    runs = summarize(first + second)
    assert [r.run_key for r in runs] == ["run", "other"]
    assert runs[1].cuts is None
    cell = _cell(runs[1], "steer", "Apply")
    assert math.isnan(cell.success.value) and math.isnan(cell.fluent.value)
    assert str(cell.success) == "n/a"
    assert cell.bloom_exact.value == 1.0  # what needs no cut is still reported


def test_settings_are_listed_in_report_order_whatever_order_filled_the_store() -> None:
    """An import of exports (sorted by method name) and a run (in config order) fill a store
    in different orders; the page lists the control first, then the methods as the paper does,
    with the same numbers."""
    methods = ["align_sae", "caa", "none", "prompting", "zeta", "few_shot"]
    rows = [_row(m, "Apply", i, on_target=i % 2 == 0) for m in methods for i in range(6)]
    (forward,) = summarize(rows)
    (backward,) = summarize(rows[::-1])
    listed = list(dict.fromkeys(c.method for c in forward.cells))
    assert listed == ["none", "prompting", "few_shot", "caa", "align_sae", "zeta"]
    assert [(c.method, c.level, c.bloom_exact) for c in forward.cells] == [
        (c.method, c.level, c.bloom_exact) for c in backward.cells
    ]
    assert [(d.method, d.reference, d.metric) for d in forward.differences] == [
        (d.method, d.reference, d.metric) for d in backward.differences
    ]


def test_all_levels_row_pools_the_levels_of_a_setting() -> None:
    rows = [_row("none", level, i) for level in ("Apply", "Create") for i in range(4)]
    (run,) = summarize(rows)
    pooled = _cell(run, "none", ALL_LEVELS)
    assert pooled.n == 8 and pooled.scenarios == 4


def test_duplicating_rows_across_seeds_does_not_narrow_the_interval() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(0, 2, size=30).astype(float)
    scenarios = [f"s{i}" for i in range(30)]
    once = cluster_bootstrap(values, scenarios, proportion=True)
    thrice = cluster_bootstrap(np.tile(values, 3), scenarios * 3, proportion=True)
    assert thrice.value == pytest.approx(once.value)
    assert thrice.high - thrice.low >= once.high - once.low - 1e-9
    assert thrice.clusters == 30 and thrice.n == 90
    rowwise = cluster_bootstrap(np.tile(values, 3), [f"r{i}" for i in range(90)], proportion=True)
    assert rowwise.high - rowwise.low < once.high - once.low  # what resampling rows would do


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_all_or_nothing_proportions_get_a_real_interval(value: float) -> None:
    estimate = cluster_bootstrap([value] * 24, [f"s{i}" for i in range(24)], proportion=True)
    low, high = wilson(value * 24, 24)
    assert (estimate.low, estimate.high) == (pytest.approx(low), pytest.approx(high))
    assert estimate.high - estimate.low > 0.1


def test_paired_difference_of_identical_methods_is_zero_with_an_interval_around_it() -> None:
    rng = np.random.default_rng(1)
    values = rng.integers(0, 2, size=40).astype(float)
    clusters = [f"s{i // 2}" for i in range(40)]
    same = paired_difference(values, values, clusters)
    assert same.value == 0.0 and same.low <= 0.0 <= same.high and same.high > 0
    zeros = paired_difference(np.zeros(10), np.zeros(10), [f"s{i}" for i in range(10)])
    assert zeros.value == 0.0 and zeros.low < 0.0 < zeros.high


def test_paired_difference_matches_on_scenario_level_and_seed() -> None:
    control = [_row("none", "Apply", i, on_target=False) for i in range(12)]
    steered = [_row("steer", "Apply", i, on_target=i < 6) for i in range(12)]
    (run,) = summarize(control + steered)
    diffs = {
        (d.level, d.reference, d.metric): d.estimate for d in run.differences if d.method == "steer"
    }
    estimate = diffs[("Apply", "control", "success")]
    assert estimate.value == pytest.approx(0.5) and estimate.low < 0.5 < estimate.high
    assert not any(d.method == "none" for d in run.differences)  # the control is the reference


def test_steering_diagnostics_are_averaged_and_tabled_only_where_measured() -> None:
    from dataclasses import replace

    from bench.report.tables import diagnostics_table

    control = [_row("none", "Apply", i) for i in range(4)]
    steered = [
        replace(_row("query_sae", "Apply", i), diagnostics={"attention_kl": 0.1 * i})
        for i in range(4)
    ]
    (run,) = summarize(control + steered)
    cell = _cell(run, "query_sae", "Apply")
    assert cell.diagnostics["attention_kl"].value == pytest.approx(0.15)
    assert _cell(run, "none", "Apply").diagnostics == {}
    table = diagnostics_table(run)
    assert "attention_kl" in table and "0.1500" in table and "none" not in table
    (plain,) = summarize(control)
    assert diagnostics_table(plain) == ""
