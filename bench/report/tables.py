"""Result tables (tabulate) from stored generation rows."""

from __future__ import annotations

from collections.abc import Iterable

from tabulate import tabulate

from bench.report.aggregate import CellAggregate, Cuts
from bench.store import GenerationRow, ResultsStore


def load_rows(store_path: str, cell_hashes: Iterable[str] | None = None) -> list[GenerationRow]:
    """Rows of a store, optionally only those of the given cells."""
    wanted = set(cell_hashes) if cell_hashes is not None else None
    with ResultsStore(store_path) as store:
        return [row for row in store.rows() if wanted is None or row.cell_hash in wanted]


def per_level_table(
    cells: list[CellAggregate], cuts: dict[str, Cuts], tablefmt: str = "github"
) -> str:
    """One line per (model, method, hyperparameters, target level), values with 95% CIs."""
    lines = [
        [
            c.model,
            c.method,
            c.hparams,
            c.level,
            c.n,
            str(c.bloom_exact),
            str(c.bloom_within_one),
            str(c.fluent),
            f"{c.perplexity.value:.1f}",
            str(c.relevance),
            f"{c.prompt_copy.value:.2f}",
            str(c.composite),
            f"{c.tokens:.0f}",
        ]
        for c in cells
    ]
    headers = [
        "model",
        "method",
        "hparams",
        "target",
        "n",
        "bloom exact",
        "within one",
        "fluent",
        "ppl (median)",
        "relevance",
        "copy",
        "composite",
        "tokens",
    ]
    table = tabulate(lines, headers=headers, tablefmt=tablefmt)
    notes = [
        f"{model}: fluent = ppl <= {cut.max_perplexity:.1f}, 3-gram repetition <= "
        f"{cut.max_repetition:.2f} and prompt 4-gram copying <= {cut.max_prompt_copy:.2f}; "
        f"relevant = similarity >= {cut.min_relevance:.2f} "
        f"(cuts from {cut.source})"
        for model, cut in cuts.items()
    ]
    return "\n".join([table, "Values: mean [95% bootstrap CI].", *notes])


def confusion_tables(cells: list[CellAggregate], tablefmt: str = "github") -> str:
    """Per (model, method, hparams): target level (rows) x predicted level (columns) counts."""
    blocks = []
    for key in dict.fromkeys((c.model, c.method, c.hparams) for c in cells):
        group = [c for c in cells if (c.model, c.method, c.hparams) == key]
        lines = [[c.level, *c.predicted.values()] for c in group]
        headers = ["target \\ predicted", *group[0].predicted]
        title = " ".join(part for part in key if part != "-")
        blocks.append(f"{title}\n{tabulate(lines, headers=headers, tablefmt=tablefmt)}")
    return "\n\n".join(blocks)
