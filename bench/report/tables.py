"""Result tables (tabulate) from stored generation rows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from statistics import fmean

from tabulate import tabulate

from bench.data.levels import LEVELS
from bench.store import GenerationRow, ResultsStore


def load_rows(store_path: str, cell_hashes: Iterable[str] | None = None) -> list[GenerationRow]:
    """Rows of a store, optionally only those of the given cells."""
    wanted = set(cell_hashes) if cell_hashes is not None else None
    with ResultsStore(store_path) as store:
        return [row for row in store.rows() if wanted is None or row.cell_hash in wanted]


def per_level_table(rows: list[GenerationRow], tablefmt: str = "github") -> str:
    """One line per (model, method, hyperparameters, target level)."""
    groups: dict[tuple, list[GenerationRow]] = defaultdict(list)
    for row in rows:
        hparams = ",".join(f"{k}={v}" for k, v in sorted(row.hparams.items())) or "-"
        groups[(row.model, row.method, hparams, row.level)].append(row)
    order = {level.value: level.index for level in LEVELS}
    lines = []
    for (model, method, hparams, level), group in sorted(
        groups.items(), key=lambda item: (*item[0][:3], order[item[0][3]])
    ):
        lines.append(
            [
                model,
                method,
                hparams,
                level,
                len(group),
                fmean(row.n_tokens for row in group),
                100 * fmean(row.finished for row in group),
            ]
        )
    headers = ["model", "method", "hparams", "target", "n", "tokens", "ended %"]
    return tabulate(lines, headers=headers, tablefmt=tablefmt, floatfmt=".1f")
