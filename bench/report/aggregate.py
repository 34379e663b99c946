"""Per-cell aggregates of stored scores, by run, with intervals that resample scenarios.

Rows are grouped by run key first (model weights, task, decoding, data, scorer): rows of
different runs are never pooled, and each run's fluency cuts come from its own control rows.
A text is fluent when its perplexity (given the control prompt) and its repetition are at
most the 95th percentiles of the run's control texts; relevant when its scenario ranks in the
top k of the split; on target when it sets a new task at the target level; and a success when
it is all of these and does not leak the instruction. A run without control rows has no
fluency cut: its fluency and success are reported as n/a, never cut against itself.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr

from bench.criteria import SCORE_KEYS, Cuts, success
from bench.data.levels import LEVELS
from bench.errors import DataError
from bench.report.naming import method_rank
from bench.report.stats import Estimate, cluster_bootstrap, paired_difference
from bench.store import GenerationRow

ALL_LEVELS = "all"
"""The target label of aggregates pooled over every level of a setting."""
REFERENCE_ROLES = ("control", "prompting")


def scored_rows(rows: list[GenerationRow]) -> list[GenerationRow]:
    """Rows that carry scores; rows scored by an older bench (missing scores) are an error."""
    stale = [row for row in rows if not row.scores.keys() >= SCORE_KEYS]
    if stale:
        missing = sorted(SCORE_KEYS - stale[0].scores.keys())
        raise DataError(
            f"{len(stale)} stored rows lack the score(s) {', '.join(missing)}: they were written "
            "by an older bench; run again into a new store"
        )
    return rows


@dataclass
class CellAggregate:
    """Everything the tables show for one method setting at one target level (or all)."""

    setting_key: str
    method: str
    role: str
    hparams: str
    level: str
    n: int
    scenarios: int
    success: Estimate
    bloom_exact: Estimate
    bloom_within_one: Estimate
    sets_task: Estimate
    leaks: Estimate
    relevant: Estimate
    fluent: Estimate
    perplexity: Estimate
    tokens: float
    predicted: dict[str, int] = field(default_factory=dict)
    """Confusion-matrix row: how often each level (or no new task) was read."""
    diagnostics: dict[str, Estimate] = field(default_factory=dict)
    """Means of what the method measured about its own steering (e.g. attention shift), for
    the measures every row of the cell has."""


@dataclass
class Difference:
    """A paired difference of one setting against a reference setting."""

    setting_key: str
    method: str
    hparams: str
    level: str
    reference: str
    """'control' or 'prompting' (with its hyperparameters when it has several settings)."""
    metric: str
    estimate: Estimate


@dataclass
class RunSummary:
    """One run (rows sharing a run key): its identity, cuts, cells and paired differences."""

    run_key: str
    model: str
    task: str
    split: str
    decoding: dict
    scorer: str
    weights_sha256: str
    cuts: Cuts | None
    length_correlation: float
    """Spearman correlation of log perplexity with length over the control texts: near 0
    when perplexity measures fluency rather than length (NaN without a control)."""
    cells: list[CellAggregate]
    differences: list[Difference]
    rows: int


def hparams_label(hparams: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(hparams.items())) or "-"


def _flags(rows: list[GenerationRow], cuts: Cuts | None) -> dict[str, np.ndarray]:
    def column(values: list[float]) -> np.ndarray:
        return np.asarray(values, dtype=float)

    nan = math.nan
    return {
        "success": column([float(success(r.scores, cuts)) if cuts else nan for r in rows]),
        "bloom_exact": column([float(r.scores["on_target"]) for r in rows]),
        "bloom_within_one": column(
            [float(r.scores["new_task"] and r.scores["level_distance"] <= 1) for r in rows]
        ),
        "sets_task": column([float(r.scores["new_task"]) for r in rows]),
        "leaks": column([float(r.scores["leaks"]) for r in rows]),
        "relevant": column([float(r.scores["relevant"]) for r in rows]),
        "fluent": column([float(cuts.fluent(r.scores)) if cuts else nan for r in rows]),
    }


def _cell(rows: list[GenerationRow], level: str, cuts: Cuts | None) -> CellAggregate:
    first = rows[0]
    clusters = [r.scenario_id for r in rows]
    flags = _flags(rows, cuts)
    estimates = {
        name: cluster_bootstrap(values, clusters, proportion=True)
        if not np.isnan(values).all()
        else Estimate(math.nan, math.nan, math.nan, len(rows), len(set(clusters)))
        for name, values in flags.items()
    }
    predicted = {level.value: 0 for level in LEVELS} | {"no task": 0}
    for r in rows:
        predicted[r.scores["pred_level"] if r.scores["new_task"] else "no task"] += 1
    return CellAggregate(
        setting_key=first.setting_key,
        method=first.method,
        role=first.role,
        hparams=hparams_label(first.hparams),
        level=level,
        n=len(rows),
        scenarios=len(set(clusters)),
        perplexity=cluster_bootstrap(
            [r.scores["perplexity"] for r in rows], clusters, statistic=np.median
        ),
        tokens=float(np.mean([r.n_tokens for r in rows])),
        predicted=predicted,
        diagnostics={
            name: cluster_bootstrap([r.diagnostics[name] for r in rows], clusters)
            for name in sorted(set.intersection(*(set(r.diagnostics) for r in rows)))
        },
        **estimates,
    )


def _differences(by_setting: dict[str, list[GenerationRow]], cuts: Cuts | None) -> list[Difference]:
    """Each setting minus each reference setting, paired on (scenario, level, seed)."""
    references = [
        (key, rows) for key, rows in by_setting.items() if rows[0].role in REFERENCE_ROLES
    ]
    results = []
    for key, rows in by_setting.items():
        if rows[0].role == "control":
            continue  # the control is what others are measured against
        for ref_key, ref_rows in references:
            if ref_key == key or ref_rows[0].role == rows[0].role:
                continue
            role = ref_rows[0].role
            same_role = [k for k, r in references if r[0].role == role]
            name = role if len(same_role) == 1 else f"{role} ({hparams_label(ref_rows[0].hparams)})"
            paired = {(r.scenario_id, r.level, r.seed): r for r in ref_rows}
            matched = [
                (r, paired[(r.scenario_id, r.level, r.seed)])
                for r in rows
                if (r.scenario_id, r.level, r.seed) in paired
            ]
            if not matched:
                continue
            for level in [ALL_LEVELS, *(lv.value for lv in LEVELS)]:
                pairs = [(a, b) for a, b in matched if level in (ALL_LEVELS, a.level)]
                if not pairs:
                    continue
                mine = _flags([a for a, _ in pairs], cuts)
                theirs = _flags([b for _, b in pairs], cuts)
                for metric in ("success", "bloom_exact"):
                    if np.isnan(mine[metric]).any():
                        continue
                    estimate = paired_difference(
                        mine[metric], theirs[metric], [a.scenario_id for a, _ in pairs]
                    )
                    results.append(
                        Difference(
                            key,
                            rows[0].method,
                            hparams_label(rows[0].hparams),
                            level,
                            name,
                            metric,
                            estimate,
                        )
                    )
    return results


def _length_correlation(control: list[GenerationRow]) -> float:
    """Spearman(perplexity, tokens) over control texts; NaN when either does not vary."""
    measured = [r for r in control if not math.isnan(r.scores["perplexity"])]
    ppl = [r.scores["perplexity"] for r in measured]
    tokens = [r.n_tokens for r in measured]
    if len(set(ppl)) < 2 or len(set(tokens)) < 2:
        return math.nan
    return float(spearmanr(ppl, tokens)[0])


def _settings_in_order(rows: list[GenerationRow]) -> dict[str, list[GenerationRow]]:
    """A run's rows per setting, the settings in report order (method, then hparams), so a page
    lists them alike whether a run or an import of its exports filled the store."""
    by_setting: dict[str, list[GenerationRow]] = defaultdict(list)
    for row in rows:
        by_setting[row.setting_key].append(row)

    def place(key: str) -> tuple[int, str, str]:
        first = by_setting[key][0]
        return method_rank(first.method), first.method, hparams_label(first.hparams)

    return {key: by_setting[key] for key in sorted(by_setting, key=place)}


def summarize(rows: list[GenerationRow]) -> list[RunSummary]:
    """One summary per run key, in the order runs first appear in `rows`; within a run the
    settings in report order (`bench.report.naming`)."""
    by_run: dict[str, list[GenerationRow]] = defaultdict(list)
    for row in scored_rows(rows):
        by_run[row.run_key].append(row)
    summaries = []
    order = {level.value: level.index for level in LEVELS}
    for run_key, run_rows in by_run.items():
        control = [r for r in run_rows if r.role == "control"]
        cuts = Cuts.from_control([r.scores for r in control]) if control else None
        length_correlation = _length_correlation(control)
        by_setting = _settings_in_order(run_rows)
        cells = []
        for rows_of_setting in by_setting.values():
            by_level: dict[str, list[GenerationRow]] = defaultdict(list)
            for row in rows_of_setting:
                by_level[row.level].append(row)
            for level in sorted(by_level, key=order.__getitem__):
                cells.append(_cell(by_level[level], level, cuts))
            cells.append(_cell(rows_of_setting, ALL_LEVELS, cuts))
        first = run_rows[0]
        summaries.append(
            RunSummary(
                run_key=run_key,
                model=first.model,
                task=first.task,
                split=first.split,
                decoding=first.decoding,
                scorer=first.scorer,
                weights_sha256=first.weights_sha256,
                cuts=cuts,
                length_correlation=length_correlation,
                cells=cells,
                differences=_differences(by_setting, cuts),
                rows=len(run_rows),
            )
        )
    return summaries


def control_cuts(rows: list[GenerationRow], model: str, task: str, source: str) -> Cuts:
    """The fluency cuts of the newest run in `rows` (read from `source`) with control rows
    for `model` and `task`."""
    runs = [
        run
        for run in summarize(rows)
        if run.model == model and run.task == task and run.cuts is not None
    ]
    if not runs:
        raise DataError(f"{source} has no control rows for model {model!r} and task {task!r}")
    return runs[-1].cuts
