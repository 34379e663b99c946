"""Result tables (tabulate) from run summaries."""

from __future__ import annotations

from tabulate import tabulate

from bench.report.aggregate import ALL_LEVELS, RunSummary
from bench.report.stats import Estimate
from bench.retrieval import RELEVANCE_TOP_K


def run_heading(run: RunSummary) -> str:
    """Which run a table is about, and the cuts it used."""
    decoding = ", ".join(f"{k}={v}" for k, v in sorted(run.decoding.items()))
    lines = [
        f"model {run.model} (weights sha256 {run.weights_sha256[:12]}), task {run.task}, "
        f"split {run.split}, decoding {decoding}; scorer {run.scorer}; run key {run.run_key}; "
        f"{run.rows} rows"
    ]
    if run.cuts is None:
        lines.append(
            "no control rows in this run: fluency and success are n/a (never cut against the "
            "method's own texts)"
        )
    else:
        lines.append(
            f"fluent = perplexity given the control prompt <= {run.cuts.max_perplexity:.1f} and "
            f"3-gram repetition <= {run.cuts.max_repetition:.2f} (95th percentiles of the "
            f"{run.cuts.n_control} control texts); relevant = own scenario in the top "
            f"{RELEVANCE_TOP_K} of the split by similarity; success = a new task at the target "
            "level, fluent, relevant and not leaking; control: Spearman(perplexity, length) = "
            f"{run.length_correlation:.2f}"
        )
    return "\n".join(lines)


def per_level_table(run: RunSummary, tablefmt: str = "github") -> str:
    """One line per (method setting, target level) and one pooled over levels, with 95% CIs."""
    lines = [
        [
            c.method,
            c.hparams,
            c.level,
            c.n,
            c.scenarios,
            str(c.success),
            str(c.bloom_exact),
            str(c.bloom_within_one),
            str(c.sets_task),
            str(c.leaks),
            str(c.relevant),
            str(c.fluent),
            f"{c.perplexity.value:.1f}",
            f"{c.tokens:.0f}",
        ]
        for c in run.cells
    ]
    headers = [
        "method",
        "hparams",
        "target",
        "n",
        "scen.",
        "success",
        "bloom exact",
        "within one",
        "new task",
        "leaks",
        "relevant",
        "fluent",
        "ppl (med.)",
        "tokens",
    ]
    table = tabulate(lines, headers=headers, tablefmt=tablefmt)
    return "\n".join(
        [table, "", "Values: mean [95% CI, resampling scenarios]; 'all' pools the levels."]
    )


def differences_table(run: RunSummary, tablefmt: str = "github") -> str:
    """Paired differences (method - reference) on the same scenarios, levels and seeds."""
    columns: dict[tuple[str, str], str] = {}
    keyed: dict[tuple[str, str, str, str], dict[tuple[str, str], str]] = {}
    for d in run.differences:
        column = (d.metric, d.reference)
        columns.setdefault(column, f"Δ {d.metric.replace('_', ' ')} vs {d.reference}")
        keyed.setdefault((d.setting_key, d.method, d.hparams, d.level), {})[column] = str(
            d.estimate
        )
    if not keyed:
        return "(no paired differences: the run has no control or prompting rows to pair with)"
    order = list(columns)
    lines = [
        [method, hparams, level, *(values.get(column, "") for column in order)]
        for (_, method, hparams, level), values in keyed.items()
    ]
    headers = ["method", "hparams", "target", *(columns[c] for c in order)]
    return "\n".join(
        [
            tabulate(lines, headers=headers, tablefmt=tablefmt),
            "",
            "Paired on (scenario, level, seed); 95% CI resampling scenarios.",
        ]
    )


def _precise(e: Estimate) -> str:
    return f"{e.value:.4f} [{e.low:.4f}, {e.high:.4f}]"


def diagnostics_table(run: RunSummary, tablefmt: str = "github") -> str:
    """The methods' own measurements of their steering (e.g. attention shift), per setting
    and target level; empty when no method in the run measures any."""
    cells = [c for c in run.cells if c.diagnostics]
    if not cells:
        return ""
    names = sorted({name for c in cells for name in c.diagnostics})
    lines = [
        [
            c.method,
            c.hparams,
            c.level,
            str(c.bloom_exact),
            *(_precise(c.diagnostics[n]) if n in c.diagnostics else "" for n in names),
        ]
        for c in cells
    ]
    headers = ["method", "hparams", "target", "bloom exact", *names]
    table = tabulate(lines, headers=headers, tablefmt=tablefmt)
    return "\n".join([table, "", "Values: mean [95% CI, resampling scenarios]."])


def confusion_tables(run: RunSummary, tablefmt: str = "github") -> str:
    """Per method setting: target level (rows) x level read (columns, or no new task)."""
    blocks = []
    for key in dict.fromkeys(c.setting_key for c in run.cells):
        group = [c for c in run.cells if c.setting_key == key and c.level != ALL_LEVELS]
        lines = [[c.level, *c.predicted.values()] for c in group]
        headers = ["target \\ read", *group[0].predicted]
        title = f"{group[0].method} {group[0].hparams}".removesuffix(" -")
        blocks.append(f"{title}\n\n{tabulate(lines, headers=headers, tablefmt=tablefmt)}")
    return "\n\n".join(blocks)


def run_report(run: RunSummary, confusion: bool, headings: str = "") -> str:
    """Everything a run shows, in order: its heading, the per-level table, the paired
    differences, the steering diagnostics (when measured) and, with `confusion`, the
    confusion tables. `headings` is the prefix of each part's title ("### " on the results
    page); without it each title is a line ending in a colon, as `bench run` prints them."""
    parts = [
        ("Per target level", per_level_table(run)),
        ("Paired differences", differences_table(run)),
    ]
    if diagnostics := diagnostics_table(run):
        parts.append(("Steering diagnostics", diagnostics))
    if confusion:
        title = "Confusion (level the scorer reads, per target level)"
        parts.append((title, confusion_tables(run)))
    blocks = [run_heading(run)]
    blocks += [
        f"{headings}{title}\n\n{table}" if headings else f"{title}:\n{table}"
        for title, table in parts
    ]
    return "\n\n".join(blocks)
