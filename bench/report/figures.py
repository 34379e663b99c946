"""The paper's figures, drawn from a summary (`bench.report.summary`) and the rows behind it.

Matplotlib with the Agg backend; each figure is written as PNG and PDF (no timestamps, so the
same inputs give the same files). One colour per method everywhere (Okabe-Ito, colour-blind
safe); every title says model, split and n. A figure whose inputs are absent (no SAE rows, no
validation file) is not drawn, and `draw_figures` says which and why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from bench.atomic import make_folder
from bench.data.levels import LEVELS
from bench.report.naming import method_label, ordered_methods
from bench.report.summary import mechanism_points, minimum_detectable, steerability_values
from bench.store import GenerationRow

METHOD_COLOURS = {
    "none": "#000000",
    "prompting": "#E69F00",
    "few_shot": "#56B4E9",
    "caa": "#009E73",
    "actadd": "#F0E442",
    "query_sae": "#0072B2",
    "align_sae": "#D55E00",
}
OTHER_COLOUR = "#CC79A7"
LEVEL_NAMES = [level.value for level in LEVELS]
READ_LABELS = [*LEVEL_NAMES, "no task"]


def colour(method: str) -> str:
    return METHOD_COLOURS.get(method, OTHER_COLOUR)


@dataclass
class Drawn:
    """What `draw_figures` did: files written, and figures not drawn with the reason."""

    files: list[Path]
    skipped: dict[str, str]


def _save(fig: Figure, out: Path, name: str) -> list[Path]:
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None, "Creator": None})
    plt.close(fig)
    return paths


def _cells(summary: dict, split: str, level: str = "all") -> list[dict]:
    return [c for c in summary["cells"] if c["split"] == split and c["level"] == level]


def _model(summary: dict, split: str) -> str:
    models = sorted({run["model"] for run in summary["runs"] if run["split"] == split})
    return ", ".join(models)


def _scenarios(summary: dict, split: str) -> int:
    return max(run["scenarios"] for run in summary["runs"] if run["split"] == split)


def _yerr(cell: dict, metric: str) -> list[list[float]]:
    return [[cell[metric] - cell[f"{metric}_low"]], [cell[f"{metric}_high"] - cell[metric]]]


def frontier(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(a) Every dev setting: target-level accuracy against the fluent and relevant rates, one
    row of panels per model (the models side by side, each against its own control)."""
    cells = [c for c in _cells(summary, "dev") if c["fluent"] is not None]
    if not cells:
        return "no dev rows with a control (fluency needs one)"
    models = sorted({c["model"] for c in cells})
    fig, grid = plt.subplots(
        len(models), 2, figsize=(10, 0.4 + 3.8 * len(models)), sharey=True, squeeze=False
    )
    for axes, model in zip(grid, models, strict=True):
        mine = [c for c in cells if c["model"] == model]
        for ax, x in zip(axes, ("fluent", "relevant"), strict=True):
            for cell in mine:
                reference = cell["role"] in ("control", "prompting")
                ax.errorbar(
                    cell[x],
                    cell["bloom_exact"],
                    xerr=_yerr(cell, x),
                    yerr=_yerr(cell, "bloom_exact"),
                    fmt="s" if reference else "o",
                    markersize=7 if reference else 5,
                    color=colour(cell["method"]),
                    ecolor=matplotlib.colors.to_rgba(colour(cell["method"]), 0.3),
                    elinewidth=0.6,
                    alpha=0.85,
                )
                if cell["chosen"]:
                    ax.plot(
                        cell[x], cell["bloom_exact"], "o", markersize=13, mfc="none", mec="#555555"
                    )
            ax.set_xlabel(f"{x} rate")
            ax.grid(alpha=0.3)
        scenarios = max(c["scenarios"] for c in mine)
        axes[0].set_ylabel(f"{model}\ntarget level read (Bloom exact)")
        axes[0].set_title(f"{model}: {scenarios} scenarios, n = {mine[0]['n']} texts per setting",
                          fontsize=9, loc="left")  # fmt: skip
    methods = ordered_methods({c["method"] for c in cells})
    for method in methods:
        grid[0][1].plot([], [], "o", color=colour(method), label=method_label(method))
    if any(c["chosen"] for c in cells):
        grid[0][1].plot([], [], "o", markersize=11, mfc="none", mec="#555555", label="chosen")
    grid[0][1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(f"Steering frontier: {_model(summary, 'dev')}, dev split (95% CI)")
    fig.subplots_adjust(hspace=0.35)
    return fig


def _dodge(count: int, width: float = 0.8) -> np.ndarray:
    return (np.arange(count) - (count - 1) / 2) * width / max(count, 1)


def test_split(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(b) Success and Bloom exact per method at its chosen setting, overall and per level."""
    cells = [c for c in summary["cells"] if c["split"] == "test"]
    if not cells:
        return "no test-split rows"
    methods = ordered_methods({c["method"] for c in cells})
    levels = ["all", *LEVEL_NAMES]
    by = {(c["method"], c["level"]): c for c in cells}
    fig, axes = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    offsets = _dodge(len(methods))
    for ax, metric in zip(axes, ("success", "bloom_exact"), strict=True):
        for offset, method in zip(offsets, methods, strict=True):
            xs, ys, errs = [], [[], []], []
            for i, level in enumerate(levels):
                cell = by.get((method, level))
                if cell is None or cell[metric] is None:
                    continue
                xs.append(i + offset)
                errs.append(cell[metric])
                low, high = _yerr(cell, metric)
                ys[0] += low
                ys[1] += high
            ax.errorbar(
                xs,
                errs,
                yerr=ys,
                fmt="o",
                color=colour(method),
                label=method_label(method),
                capsize=2,
            )
        ax.set_ylabel(metric.replace("_", " "))
        ax.grid(alpha=0.3, axis="y")
        ax.set_ylim(bottom=0)
    axes[1].set_xticks(range(len(levels)), ["all levels", *LEVEL_NAMES])
    axes[0].legend(ncol=len(methods), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 1.3))
    n = by[(methods[0], "all")]["n"]
    fig.suptitle(
        f"Test split: {_model(summary, 'test')}, {_scenarios(summary, 'test')} scenarios, "
        f"n = {n} texts per method (95% CI resampling scenarios)",
        y=1.04,
    )
    return fig


def differences(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(c) Paired differences against the control and against prompting (forest plot)."""
    records = [d for d in summary["differences"] if d["split"] == "test" and d["level"] == "all"]
    if not records:
        return "no paired differences on the test split"
    references = sorted({d["reference"] for d in records})
    metrics = ("success", "bloom_exact")
    fig, axes = plt.subplots(
        len(references), 2, figsize=(10, 1.2 + 2.2 * len(references)), squeeze=False
    )
    for r, reference in enumerate(references):
        for m, metric in enumerate(metrics):
            ax = axes[r][m]
            group = [d for d in records if d["reference"] == reference and d["metric"] == metric]
            methods = ordered_methods({d["method"] for d in group})[::-1]
            for y, method in enumerate(methods):
                d = next(d for d in group if d["method"] == method)
                ax.errorbar(
                    d["difference"],
                    y,
                    xerr=[
                        [d["difference"] - d["difference_low"]],
                        [d["difference_high"] - d["difference"]],
                    ],
                    fmt="o",
                    color=colour(method),
                    capsize=3,
                )
            ax.axvline(0, color="#777777", lw=0.8)
            ax.set_yticks(range(len(methods)), [method_label(m) for m in methods])
            ax.set_ylim(-0.6, len(methods) - 0.4)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
            ax.set_title(f"Δ {metric.replace('_', ' ')} vs {reference}", fontsize=10)
            ax.grid(alpha=0.3, axis="x")
    n = records[0]["n"]
    fig.suptitle(
        f"Paired differences: {_model(summary, 'test')}, test split, "
        f"{records[0]['scenarios']} scenarios, n = {n} pairs (95% CI resampling scenarios)"
    )
    fig.tight_layout()
    return fig


def confusion(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(d) Target level x level read (or no new task), per method at its test setting."""
    cells = [c for c in summary["cells"] if c["split"] == "test" and c["level"] != "all"]
    if not cells:
        return "no test-split rows"
    methods = ordered_methods({c["method"] for c in cells})
    columns = min(4, len(methods))
    rows_of_plots = math.ceil(len(methods) / columns)
    fig, axes = plt.subplots(
        rows_of_plots, columns, figsize=(3.3 * columns, 3.2 * rows_of_plots), squeeze=False
    )
    for ax in axes.flat[len(methods) :]:
        ax.axis("off")
    for ax, method in zip(axes.flat, methods, strict=False):
        matrix = np.array(
            [
                [c[f"read_{read}"] for read in READ_LABELS]
                for level in LEVEL_NAMES
                for c in cells
                if c["method"] == method and c["level"] == level
            ],
            dtype=float,
        )
        shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Greys", vmin=0, vmax=1)
        for (i, j), count in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                f"{count:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if shares[i, j] > 0.5 else "black",
            )
        ax.set_xticks(range(len(READ_LABELS)), [r[:3] for r in READ_LABELS], fontsize=7)
        ax.set_yticks(range(len(LEVEL_NAMES)), [r[:3] for r in LEVEL_NAMES], fontsize=7)
        ax.set_title(
            method_label(method),
            fontsize=10,
            color=colour(method) if method != "actadd" else "#8a7d00",
        )
        ax.set_xlabel("read", fontsize=8)
        ax.set_ylabel("target", fontsize=8)
    n = cells[0]["n"]
    fig.suptitle(
        f"Confusion: {_model(summary, 'test')}, test split, n = {n} texts per target level "
        "(row shares shaded, counts printed)"
    )
    fig.tight_layout()
    return fig


def steerability(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(e) Per-scenario steerability: the distribution over scenarios of the paired change in
    the target level's probability, and the share of scenarios moved away from the target."""
    values = steerability_values(rows)
    if not values:
        return "no test-split rows paired with a control"
    methods = ordered_methods(set(values))
    fig, ax = plt.subplots(figsize=(9, 4))
    parts = ax.violinplot([values[m] for m in methods], showmedians=True)
    for body, method in zip(parts["bodies"], methods, strict=True):
        body.set_facecolor(colour(method))
        body.set_alpha(0.5)
    for line in ("cbars", "cmins", "cmaxes", "cmedians"):
        parts[line].set_color("#555555")
    jitter = np.random.default_rng(0)
    for i, method in enumerate(methods, start=1):
        xs = i + jitter.uniform(-0.06, 0.06, len(values[method]))
        ax.scatter(xs, values[method], s=6, color="#333333", zorder=3)
        away = float(np.mean(values[method] < 0))
        ax.text(i, ax.get_ylim()[1], f"{away:.0%} away", ha="center", va="bottom", fontsize=8)
    ax.axhline(0, color="#777777", lw=0.8)
    ax.set_xticks(range(1, len(methods) + 1), [method_label(m) for m in methods])
    ax.set_ylabel("Δ P(target level), method − control")
    ax.grid(alpha=0.3, axis="y")
    k = len(next(iter(values.values())))
    fig.suptitle(
        f"Per-scenario steerability: {_model(summary, 'test')}, test split, {k} scenarios "
        "(each point a scenario's mean over levels and seeds)",
        y=1.02,
    )
    return fig


def mechanism(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(f) The seed paper's mechanism: attention shift (KL) against the change in the target
    level's probability, per text, for the SAE methods."""
    points = mechanism_points(rows)
    if not points:
        return "no test-split rows of query_sae or align_sae with attention diagnostics"
    rho = {r["method"]: r for r in summary.get("mechanism", [])}
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for method in ordered_methods(set(points)):
        kl, change = np.array([(kl, change) for _, kl, change in points[method]]).T
        name = method_label(method)
        if method in rho:
            r = rho[method]
            name += (
                f" (ρ = {r['spearman']:+.2f} [{r['spearman_low']:+.2f}, {r['spearman_high']:+.2f}])"
            )
        ax.scatter(np.maximum(kl, 1e-4), change, s=8, alpha=0.5, color=colour(method), label=name)
    ax.axhline(0, color="#777777", lw=0.8)
    ax.set_xscale("log")  # the methods' shifts differ by orders of magnitude
    ax.set_xlabel("attention shift at the steered layer (KL, clean → steered; log scale)")
    ax.set_ylabel("Δ P(target level), method − control")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    n = sum(len(v) for v in points.values())
    ax.set_title(f"Mechanism: {_model(summary, 'test')}, test split, n = {n} texts", fontsize=10)
    return fig


def sae_quality(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(g) SAE explained variance and CE loss score by layer and width; training curves."""
    records = summary.get("sae") or []
    if not records:
        return "no SAE evaluations given"
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    several = len({r.get("model") for r in records}) > 1
    names = [
        (f"{r['model']} " if several else "")
        + f"L{r['layer']}, {r['d_sae']} latents"
        + (", aligned" if r["aligned"] else "")
        for r in records
    ]
    x = np.arange(len(records))
    for metric, marker, tint in (
        ("explained_variance", "o", "#0072B2"),
        ("ce_loss_score", "s", "#D55E00"),
    ):
        axes[0].plot(x, [r[metric] for r in records], marker, color=tint, label=metric)
    # right-aligned at the tick, so long names lean away from their neighbours
    axes[0].set_xticks(x, names, rotation=30, ha="right", rotation_mode="anchor", fontsize=8)
    axes[0].axhline(0.9, color="#777777", lw=0.8, ls="--")
    axes[0].grid(alpha=0.3, axis="y")
    axes[0].legend(fontsize=8, loc="center left")
    axes[0].set_title("held-out quality (target 0.9 dashed)", fontsize=10)
    for record, name in zip(records, names, strict=True):
        if record.get("curve_tokens"):
            axes[1].plot(
                np.array(record["curve_tokens"]) / 1e6,
                record["curve_explained_variance"],
                label=name,
            )
    axes[1].set_xlabel("training tokens (millions)")
    axes[1].set_ylabel("held-out explained variance")
    axes[1].legend(fontsize=8)
    axes[1].grid(alpha=0.3)
    axes[1].set_title("training curves", fontsize=10)
    models = sorted({r["model"] for r in records if "model" in r})
    models = models or summary["provenance"]["models"]
    tokens = " / ".join(sorted({f"{r['heldout_tokens']:,}" for r in records}))
    fig.suptitle(f"Query SAEs of {', '.join(models)}: {tokens} held-out tokens")
    fig.tight_layout()
    return fig


def _label_f1(per_label: dict[str, float], label: str) -> float:
    """F1 of a level, or of "no task" (named "none" where texts are read a level or none)."""
    if label == "no task":
        return per_label.get("no task", per_label.get("none", np.nan))
    return per_label.get(label, np.nan)


def scorer_validity(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(h) The level reader's per-level F1 on each validation set, and agreement with the
    annotations of generated texts."""
    validation = summary.get("validation") or {}
    sets = {name: v for name, v in validation.items() if "f1_per_label" in v}
    if not sets:
        return "no validation file given"
    names = list(sets)
    matrix = np.array(
        [[_label_f1(sets[n]["f1_per_label"], level) for level in READ_LABELS] for n in names]
    )
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(names) + 1.8))
    ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (i, j), value in np.ndenumerate(matrix):
        if not np.isnan(value):
            ax.text(
                j,
                i,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="black" if value > 0.6 else "white",
            )
    ax.set_xticks(range(len(READ_LABELS)), READ_LABELS, fontsize=8)
    ax.set_yticks(
        range(len(names)),
        [f"{n} (n={sets[n]['n']}, macro {sets[n]['macro_f1']:.2f})" for n in names],
        fontsize=7,
    )
    ax.set_title(
        "Scorer validity: per-level F1 by validation set (blank: level absent)", fontsize=10
    )
    return fig


def power(summary: dict, rows: list[GenerationRow]) -> Figure | str:
    """(i) Smallest paired difference detectable at 80% power against the number of
    scenarios, from the observed between-scenario variance; dev and test sizes marked."""
    records = summary.get("power") or []
    if not records:
        return "no paired differences to estimate variance from"
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    k = np.arange(4, 201)
    styles = {"success": "-", "bloom_exact": "--"}
    sources = sorted({(r["model"], r["split"]) for r in records})
    palette = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#D55E00", "#56B4E9"]
    colors = {source: palette[i % len(palette)] for i, source in enumerate(sources)}
    for record in records:
        ax.plot(
            k,
            minimum_detectable(record["sigma"], k),
            styles.get(record["metric"], ":"),
            color=colors[(record["model"], record["split"])],
            label=f"{record['metric'].replace('_', ' ')} "
            f"(σ {record['sigma']:.2f} from {record['model']} {record['split']})",
        )
    for split in sorted({r["split"] for r in records}):
        n = _scenarios(summary, split)
        ax.axvline(n, color="#777777", lw=0.8, ls=":")
        ax.text(
            n,
            0.98,
            f"{split}: {n} ",
            fontsize=8,
            rotation=90,
            ha="right",
            va="top",
            transform=ax.get_xaxis_transform(),
        )
    ax.set_xlabel("scenarios")
    ax.set_ylabel("minimum detectable paired difference")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title(
        f"Power (80%, two-sided α = 0.05): {', '.join(summary['provenance']['models'])}",
        fontsize=10,
    )
    return fig


FIGURES: dict[str, Callable[[dict, list[GenerationRow]], Figure | str]] = {
    "frontier": frontier,
    "test-split": test_split,
    "differences": differences,
    "confusion": confusion,
    "steerability": steerability,
    "mechanism": mechanism,
    "sae-quality": sae_quality,
    "scorer-validity": scorer_validity,
    "power": power,
}


def draw_figures(summary: dict[str, Any], rows: list[GenerationRow], out: str | Path) -> Drawn:
    """Every figure of `FIGURES` that its inputs allow, as PNG and PDF under `out`."""
    out = Path(out)
    make_folder(out)
    plt.rcParams.update({"svg.hashsalt": "bench", "font.size": 9})
    drawn = Drawn([], {})
    for name, draw in FIGURES.items():
        made = draw(summary, rows)
        if isinstance(made, str):
            drawn.skipped[name] = made
        else:
            drawn.files += _save(made, out, name)
    return drawn
