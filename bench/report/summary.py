"""The paper's results file: flat records of every cell and paired difference, with provenance.

In the spirit of lm-evaluation-harness's results JSON: one record per model x method x setting
x split x level (each metric with its 95% interval), one per paired difference, the power of
each split's design, the scorer's validation, the SAEs' evaluations and the blind-read usable
rate of the annotations, and a provenance block (inputs with their `rows_sha256`, git commits,
config hashes, seeds, package versions, scorer fingerprints). Everything in it is computed from
its inputs, so rebuilding it from the same exports gives the same bytes.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import norm, spearmanr

from bench.criteria import FLUENCY_QUANTILE, success
from bench.data.annotations import NO_TASK, load_annotations
from bench.errors import DataError
from bench.report.aggregate import ALL_LEVELS, CellAggregate, RunSummary, summarize
from bench.report.export import EXPORT_SUFFIX, read_export, rows_sha256
from bench.report.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE, Estimate, cluster_bootstrap
from bench.retrieval import RELEVANCE_TOP_K
from bench.sae.metric_names import current_names
from bench.store import GenerationRow

SUMMARY_FORMAT = 1
METRICS = (
    "success",
    "bloom_exact",
    "bloom_within_one",
    "sets_task",
    "leaks",
    "relevant",
    "fluent",
    "perplexity",
)
POWER = 0.80
ALPHA = 0.05


@dataclass
class Inputs:
    """What a summary and the figures are computed from."""

    rows: list[GenerationRow]
    sources: list[dict[str, Any]]
    """Per input: its path, where it came from, rows and rows_sha256."""
    validation: dict[str, Any] = field(default_factory=dict)
    """`bench score validate --json` output (empty when not given)."""
    sae: list[dict[str, Any]] = field(default_factory=list)
    """One flat record per SAE evaluation (`bench sae eval --json`), SAELens metric names."""
    reads: list[dict[str, Any]] = field(default_factory=list)
    """Blind reads of each model's control texts (annotations, `--reads`): its usable rate."""


def _read_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"file not found: {path}") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path} is not JSON (line {error.lineno})") from None
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a JSON text file") from None


def load_inputs(
    exports: list[str],
    validation: str | None = None,
    sae: list[str] | None = None,
    reads: str | None = None,
) -> Inputs:
    """Rows of the exports (only exports: a summary must be rebuildable from committed files)
    and the optional validation, SAE evaluation and blind-read files."""
    if not exports:
        raise DataError("give at least one export (`bench export` writes them)")
    rows: list[GenerationRow] = []
    sources = []
    for path in exports:
        if not path.endswith(EXPORT_SUFFIX):
            raise DataError(f"{path}: give exports ({EXPORT_SUFFIX}; `bench export` writes them)")
        header, found = read_export(path)
        rows += found
        sources.append({"path": path, **header})
    if not rows:
        raise DataError("the exports hold no rows")
    return Inputs(
        rows=rows,
        sources=sources,
        validation=_read_json(validation) if validation else {},
        sae=[sae_record(Path(p), _read_json(p)) for p in sae or []],
        reads=load_annotations(reads) if reads else [],
    )


def sae_record(path: Path, evaluation: dict[str, Any]) -> dict[str, Any]:
    """An SAE evaluation as one flat record (SAELens / SAEBench metric names), with the held-out
    explained variance during training when its log lies beside the evaluation
    (`<folder>/<SAE name>/training_log.json`, as under results/sae/). Stage 1's curve is by
    tokens seen; an aligned SAE's log counts stage-2 steps, which are not on that axis, so its
    curve is left out."""
    name = path.name
    evaluation = current_names(evaluation)
    try:
        config = evaluation["config"]
        record = {
            "file": name,
            "model": config["model_name"],
            "layer": config["hook_layer"],
            "site": config["site"],
            "architecture": config["architecture"],
            "d_sae": config["d_sae"],
            "aligned": bool(config["concept_slots"]),
            "explained_variance": evaluation["explained_variance"],
            "l0": evaluation["l0"],
            "frac_alive": evaluation["frac_alive"],
            "ce_loss_score": evaluation["ce_loss_score"],
            "kl_div_with_sae": evaluation["kl_div_with_sae"],
            "kl_div_score": evaluation.get("kl_div_score"),  # absent from older files
            "heldout_tokens": evaluation["heldout_tokens"],
        }
    except (KeyError, TypeError):
        raise DataError(f"{name} is not an SAE evaluation of `bench sae eval --json`") from None
    for extra in ("binding_accuracy", "slot_purity"):
        if extra in evaluation:
            record[extra] = evaluation[extra]
    log = path.parent / Path(str(evaluation["sae"])).name / "training_log.json"
    if log.is_file() and not record["aligned"]:
        try:
            curve = current_names(_read_json(log)).get("curve", [])
            record["curve_tokens"] = [point["tokens"] for point in curve]
            record["curve_explained_variance"] = [point["explained_variance"] for point in curve]
        except (KeyError, TypeError, AttributeError):
            raise DataError(f"{log}: not a training log of `bench sae train`") from None
    return record


def _metric_fields(name: str, estimate: Estimate) -> dict[str, float | None]:
    def number(x: float) -> float | None:
        return None if math.isnan(x) else round(float(x), 6)

    return {
        name: number(estimate.value),
        f"{name}_low": number(estimate.low),
        f"{name}_high": number(estimate.high),
    }


def chosen_settings(runs: list[RunSummary]) -> set[tuple[str, str, str]]:
    """(model, method, hparams) of each setting run on the test split: the one chosen on dev."""
    return {
        (run.model, cell.method, cell.hparams)
        for run in runs
        if run.split == "test"
        for cell in run.cells
    }


def _cell_record(run: RunSummary, cell: CellAggregate, chosen: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "model": run.model,
        "split": run.split,
        "method": cell.method,
        "role": cell.role,
        "hparams": cell.hparams,
        "setting_key": cell.setting_key,
        "level": cell.level,
        "chosen": chosen,
        "n": cell.n,
        "scenarios": cell.scenarios,
        "tokens": round(cell.tokens, 6),
    }
    for name in METRICS:
        record |= _metric_fields(name, getattr(cell, name))
    record |= {f"read_{label}": count for label, count in cell.predicted.items()}
    record |= {
        f"diag_{name}": round(estimate.value, 6) for name, estimate in cell.diagnostics.items()
    }
    return record


def control_pairs(rows: list[GenerationRow]) -> Iterator[tuple[GenerationRow, GenerationRow]]:
    """Each row that is not a control row, with the control row of its run, scenario, level
    and seed (rows without one are left out): the pairing every paired measure uses."""
    control = {(r.run_key, r.scenario_id, r.level, r.seed): r for r in rows if r.role == "control"}
    for r in rows:
        ref = control.get((r.run_key, r.scenario_id, r.level, r.seed))
        if r.role != "control" and ref is not None:
            yield r, ref


def scenario_differences(
    rows: list[GenerationRow], run: RunSummary, setting_key: str, metric: str
) -> np.ndarray:
    """Per scenario, the mean paired difference (setting minus control) of a 0/1 metric."""
    if run.cuts is None:
        return np.array([])
    diffs: dict[str, list[float]] = {}
    for r, ref in control_pairs(rows):
        if r.setting_key != setting_key:
            continue
        if metric == "success":
            mine, theirs = success(r.scores, run.cuts), success(ref.scores, run.cuts)
        else:
            mine, theirs = r.scores["on_target"], ref.scores["on_target"]
        diffs.setdefault(r.scenario_id, []).append(float(mine) - float(theirs))
    return np.array([np.mean(v) for v in diffs.values()])


def minimum_detectable(sigma: float, scenarios: np.ndarray | float) -> np.ndarray | float:
    """Smallest paired difference a two-sided test at ALPHA detects with POWER, when the
    per-scenario differences have standard deviation `sigma` (normal approximation)."""
    z = norm.ppf(1 - ALPHA / 2) + norm.ppf(POWER)
    return z * sigma / np.sqrt(scenarios)


def target_probability(row: GenerationRow) -> float:
    return float(row.scores["level_probs"][row.level])


def steerability_values(rows: list[GenerationRow], split: str = "test") -> dict[str, np.ndarray]:
    """Per method: per scenario, the mean paired change in the target level's probability
    (method minus control, same scenario, level and seed)."""
    changes: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r, ref in control_pairs([r for r in rows if r.split == split]):
        changes[r.method][r.scenario_id].append(target_probability(r) - target_probability(ref))
    return {
        method: np.array([np.mean(v) for _, v in sorted(per.items())])
        for method, per in changes.items()
    }


def mechanism_points(
    rows: list[GenerationRow], split: str = "test"
) -> dict[str, list[tuple[str, float, float]]]:
    """Per method whose rows record the attention shift at the steered layer (the SAE
    methods): per text, its scenario, the shift (KL, clean to steered) and the paired change
    in the target level's probability (method minus control)."""
    points: dict[str, list[tuple[str, float, float]]] = defaultdict(list)
    for r, ref in control_pairs([r for r in rows if r.split == split]):
        if "attention_kl" in r.diagnostics:
            change = target_probability(r) - target_probability(ref)
            points[r.method].append((r.scenario_id, r.diagnostics["attention_kl"], change))
    return dict(points)


def _spearman(pairs: np.ndarray) -> float:
    return float(spearmanr(pairs[:, 0], pairs[:, 1])[0])


def mechanism_records(rows: list[GenerationRow]) -> list[dict[str, Any]]:
    """Per SAE method on the test split: does a larger attention shift go with a larger move
    toward the target? Spearman's rho over texts, its interval resampling scenarios."""
    records = []
    for method, points in sorted(mechanism_points(rows).items()):
        scenarios = [scenario for scenario, _, _ in points]
        pairs = np.array([(kl, change) for _, kl, change in points])
        rho = cluster_bootstrap(pairs, scenarios, statistic=_spearman)
        median_kl = round(float(np.median(pairs[:, 0])), 6)
        records.append(
            {"split": "test", "method": method, "median_kl": median_kl}
            | _metric_fields("spearman", rho)
            | {"n": rho.n, "scenarios": rho.clusters}
        )
    return records


def power_records(rows: list[GenerationRow], runs: list[RunSummary]) -> list[dict[str, Any]]:
    """Per run and metric: the between-scenario standard deviation of the paired difference
    against the control (pooled over the methods as a root mean square) and the minimum
    detectable difference at the run's number of scenarios."""
    records = []
    for run in runs:
        run_rows = [r for r in rows if r.run_key == run.run_key]
        settings = {c.setting_key for c in run.cells if c.role != "control"}
        scenarios = len({r.scenario_id for r in run_rows})
        for metric in ("success", "bloom_exact"):
            sds = [
                float(np.std(d, ddof=1))
                for key in sorted(settings)
                if len(d := scenario_differences(run_rows, run, key, metric)) > 1
            ]
            if not sds:
                continue
            sigma = math.sqrt(float(np.mean(np.square(sds))))
            records.append(
                {
                    "model": run.model,
                    "split": run.split,
                    "metric": metric,
                    "scenarios": scenarios,
                    "settings": len(sds),
                    "sigma": round(sigma, 6),
                    "mde": round(float(minimum_detectable(sigma, scenarios)), 6),
                    "power": POWER,
                    "alpha": ALPHA,
                }
            )
    return records


def annotation_record() -> dict[str, Any]:
    """Blind reads of the dev annotations: usable texts per method (the model's ceiling)."""
    counts: Counter[tuple[str, bool]] = Counter(
        (row["method"], bool(row["label"]["usable"])) for row in load_annotations()
    )
    methods = sorted({method for method, _ in counts})
    return {
        method: {
            "usable": counts[(method, True)],
            "n": counts[(method, True)] + counts[(method, False)],
        }
        for method in methods
    }


READ_LABELS = ("usable", "on_topic", "fluent", "restates", "leaks")


def read_records(reads: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per model: texts read blind, how many set a task, and how many had each label."""
    records: dict[str, dict[str, int]] = {}
    for row in reads:
        record = records.setdefault(
            row["model"], {"n": 0, "sets_task": 0, **dict.fromkeys(READ_LABELS, 0)}
        )
        record["n"] += 1
        record["sets_task"] += row["label"]["level"] != NO_TASK
        for name in READ_LABELS:
            record[name] += bool(row["label"].get(name, False))
    return dict(sorted(records.items()))


def _provenance(inputs: Inputs) -> dict[str, Any]:
    rows = inputs.rows
    versions = sorted({json.dumps(r.versions, sort_keys=True) for r in rows})
    return {
        "inputs": inputs.sources,
        "rows": len(rows),
        "rows_sha256": rows_sha256(rows),
        "git_commits": dict(sorted(Counter(r.git_commit for r in rows).items())),
        "config_hashes": dict(sorted(Counter(r.config_hash for r in rows).items())),
        "scorers": sorted({r.scorer for r in rows}),
        "seeds": sorted({r.seed for r in rows}),
        "models": {r.model: r.weights_sha256 for r in sorted(rows, key=lambda r: r.model)},
        "versions": [json.loads(v) for v in versions],
    }


def build_summary(inputs: Inputs) -> dict[str, Any]:
    """The results file's content (see the module docstring)."""
    runs = summarize(inputs.rows)
    chosen = chosen_settings(runs)
    cells = [
        _cell_record(run, cell, (run.model, cell.method, cell.hparams) in chosen)
        for run in runs
        for cell in run.cells
    ]
    differences = [
        {
            "model": run.model,
            "split": run.split,
            "method": d.method,
            "hparams": d.hparams,
            "level": d.level,
            "reference": d.reference,
            "metric": d.metric,
            "n": d.estimate.n,
            "scenarios": d.estimate.clusters,
        }
        | _metric_fields("difference", d.estimate)
        for run in runs
        for d in run.differences
    ]
    return {
        "format": SUMMARY_FORMAT,
        "runs": [
            {
                "run_key": run.run_key,
                "model": run.model,
                "split": run.split,
                "task": run.task,
                "decoding": run.decoding,
                "scorer": run.scorer,
                "weights_sha256": run.weights_sha256,
                "rows": run.rows,
                "scenarios": max(c.scenarios for c in run.cells if c.level == ALL_LEVELS),
                "max_perplexity": None if run.cuts is None else round(run.cuts.max_perplexity, 6),
                "max_repetition": None if run.cuts is None else round(run.cuts.max_repetition, 6),
                "n_control": None if run.cuts is None else run.cuts.n_control,
            }
            for run in runs
        ],
        "cells": cells,
        "differences": differences,
        "power": power_records(inputs.rows, runs),
        "steerability": [
            {
                "split": "test",
                "method": method,
                "scenarios": len(values),
                "median": round(float(np.median(values)), 6),
                "away": round(float(np.mean(values < 0)), 6),
            }
            for method, values in sorted(steerability_values(inputs.rows).items())
        ],
        "mechanism": mechanism_records(inputs.rows),
        "protocol": {
            "confidence": CONFIDENCE,
            "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
            "fluency_quantile": FLUENCY_QUANTILE,
            "relevance_top_k": RELEVANCE_TOP_K,
            "power": POWER,
            "alpha": ALPHA,
        },
        "annotations": annotation_record(),
        "reads": read_records(inputs.reads),
        "validation": inputs.validation,
        "sae": inputs.sae,
        "provenance": _provenance(inputs),
    }


def read_summary(path: str | Path) -> dict[str, Any]:
    """A results file written by `bench summary` (a `DataError` when it is not one)."""
    summary = _read_json(path)
    if not isinstance(summary, dict) or summary.get("format") != SUMMARY_FORMAT:
        raise DataError(f"{path} is not a summary of format {SUMMARY_FORMAT} (`bench summary`)")
    return summary


def summary_json(summary: dict[str, Any]) -> str:
    """The file's text: sorted keys, fixed indentation, a final newline."""
    return json.dumps(summary, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
