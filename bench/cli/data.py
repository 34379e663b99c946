"""`bench data`: what the project's data holds, by role, split and level."""

from __future__ import annotations

import click

from bench.cli.app import friendly_errors, main


@main.command()
@friendly_errors
def data() -> None:
    """Counts of the project's data roles by split and level."""
    from bench.data.counts import data_counts

    for line in data_counts():
        click.echo(line)
