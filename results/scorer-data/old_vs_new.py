"""Old scorer vs new scorer on the same stored texts: one line per method setting.

    python results/scorer-data/old_vs_new.py runs/default.sqlite

A store rescored by a newer scorer holds each text under both scorers (two runs); this prints
each setting's success and Bloom exact (all levels, 95% intervals resampling scenarios) and
the rate of texts read as setting a new task, under each.
"""

from __future__ import annotations

import sys

from tabulate import tabulate

from bench.report.aggregate import summarize
from bench.report.export import load_rows


def main(store: str) -> None:
    runs = sorted(summarize(load_rows(store)), key=lambda run: run.rows)
    table: dict[tuple[str, str], list[str]] = {}
    for run in runs:
        for cell in run.cells:
            if cell.level != "all":
                continue
            table.setdefault((cell.method, cell.hparams), []).extend(
                [str(cell.success), str(cell.bloom_exact), str(cell.sets_task)]
            )
    headers = ["method", "hparams"]
    for run in runs:
        headers += [f"{name} ({run.scorer[:8]})" for name in ("success", "bloom exact", "new task")]
    rows = [[*key, *values] for key, values in table.items()]
    print(tabulate(rows, headers=headers, tablefmt="github"))


if __name__ == "__main__":
    main(sys.argv[1])
