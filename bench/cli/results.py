"""`bench report` and `bench export`: a store's rows as a Markdown page or a per-sample log.
Both only read the store."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.app import friendly_errors, main, write_or_print


@main.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Markdown file (default: stdout).")
@click.option("--title", default="Results", show_default=True)
@click.option("--how", default="", help="Which commands made the store (written under the title).")
@friendly_errors
def report(store: str, out: str | None, title: str, how: str) -> None:
    """Write a Markdown results page (provenance, per-level table, confusion) from a store."""
    from bench.report.export import load_rows
    from bench.report.markdown import results_page

    write_or_print(results_page(load_rows(store), title, how), out)


@main.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="The export (.jsonl.gz)."
)
@click.option("--scorer", help="Only rows scored by this scorer fingerprint (default: all).")
@click.option("--split", type=click.Choice(["dev", "test", "exemplar"]), help="Only this split.")
@click.option(
    "--method", "methods", multiple=True, help="Only this method's rows (repeatable; default: all)."
)
@friendly_errors
def export(
    store: str, out: str, scorer: str | None, split: str | None, methods: tuple[str, ...]
) -> None:
    """Write a store's rows as a per-sample log: one JSON line per text with every key, score
    and diagnostic (gzip; the same rows give the same bytes). The store is not changed."""
    from bench.report.export import load_rows, select_rows, write_export

    rows = select_rows(load_rows(store), store, scorer, split, methods)
    header = write_export(rows, out, source=Path(store).name)
    click.echo(f"wrote {out}: {header['rows']} rows, rows_sha256 {header['rows_sha256']}", err=True)
