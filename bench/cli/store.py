"""`bench store`: check a results store, import exports into one, or rescore its texts."""

from __future__ import annotations

import sys

import click

from bench.cli.app import friendly_errors, main


@main.group()
def store() -> None:
    """Results stores: check one, import exports into one, or rescore its texts."""


@store.command("check")
@click.argument("path")
@friendly_errors
def store_check(path: str) -> None:
    """Integrity, schema version, duplicate keys, and rows the current code would make or
    score differently (stale), with counts; exit 1 when any (read-only)."""
    from bench.storecheck import check_store

    report = check_store(path)
    click.echo("\n".join(report.lines()))
    if report.problems:
        sys.exit(1)


@store.command("import")
@click.argument("exports", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--store", "path", required=True, type=click.Path(dir_okay=False), help="The store to fill."
)
@friendly_errors
def store_import(exports: tuple[str, ...], path: str) -> None:
    """Put the rows of exports (`bench export`) into a store, all or none, so a run resumes
    from them: rows the current code would make the same way count as done, stale ones are
    remade or rescored (`bench store check` counts them)."""
    from bench.report.export import read_export
    from bench.store import ResultsStore

    rows = [row for export in exports for row in read_export(export)[1]]
    with ResultsStore(path) as results:
        written, present = results.merge(rows)
    click.echo(f"{path}: {written} rows imported, {present} already there", err=True)


@store.command("rescore")
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="The runs' YAML config."
)
@click.option("--store", help="The store (default: the config's).")
@click.argument("overrides", nargs=-1)
@friendly_errors
def store_rescore(config_path: str | None, store: str | None, overrides: tuple[str, ...]) -> None:
    """Score the texts of a config's runs that an older scorer scored, under the current
    scorer, without building any method (the SAE methods need no SAE weights): a later
    `bench run` of the config finds them done. Older rows stay; OVERRIDES as for `bench run`."""
    from bench.config import load_config
    from bench.rescore import rescore

    config = load_config(config_path, list(overrides), store=store)
    outcome = rescore(config)
    click.echo(
        f"{config.store}: rescored {outcome.rescored} rows under scorer {outcome.scorer}; "
        f"{outcome.already} were already; {outcome.other_runs} rows of an older scorer belong "
        "to other runs (other model, split, task, decoding or data) and were left as they are",
        err=True,
    )
