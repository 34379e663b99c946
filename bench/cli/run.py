"""`bench run`: generate, score and store a grid, then print its tables."""

from __future__ import annotations

import click

from bench.cli.app import friendly_errors, main
from bench.errors import BenchError


def _split_levels(
    _ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]
) -> tuple[str, ...] | None:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    if values and not names:
        raise click.BadParameter("give at least one level, e.g. Remember,Create")
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
@click.option("--confusion", is_flag=True, help="Also print confusion matrices.")
@click.option(
    "--executor",
    type=click.Choice(["local", "ray"]),
    default="local",
    show_default=True,
    help="Make rows in this process, or with Ray actors (see README: Scaling out).",
)
@click.option("--address", help="Ray cluster to join (e.g. auto); default: start a local one.")
@click.option("--workers", type=int, default=2, show_default=True, help="Ray actors per model.")
@click.option("--cpus-per-task", type=float, default=1.0, show_default=True, help="Per actor.")
@click.option("--gpus-per-task", type=float, default=0.0, show_default=True, help="Per actor.")
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
    confusion: bool,
    executor: str,
    address: str | None,
    workers: int,
    cpus_per_task: float,
    gpus_per_task: float,
    overrides: tuple[str, ...],
) -> None:
    """Generate (and store) feedback for every cell of the grid, then print a per-level table.

    OVERRIDES are key=value pairs applied last, e.g. batch_tokens=4096 decoding.temperature=1.0.
    """
    from bench.config import load_config
    from bench.report.aggregate import summarize
    from bench.report.export import load_rows
    from bench.report.tables import run_report
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
    ray_options = {"--address": address, "--workers": workers != 2}
    ray_options |= {"--cpus-per-task": cpus_per_task != 1.0, "--gpus-per-task": gpus_per_task}
    if executor == "local" and any(ray_options.values()):
        given = ", ".join(name for name, value in ray_options.items() if value)
        raise BenchError(f"{given} only apply with --executor ray")
    pool = None
    if executor == "ray":
        from bench.ray_executor import RayExecutor

        pool = RayExecutor(address, workers, cpus_per_task, gpus_per_task)
    outcome = run_grid(config, pool)
    rescored = f" ({outcome.rescored} of them rescored texts)" if outcome.rescored else ""
    click.echo(
        f"{outcome.already_done} rows were already done; wrote {outcome.written} new rows"
        f"{rescored} to {outcome.store}"
    )
    if outcome.elsewhere:
        click.echo(f"{outcome.elsewhere} rows were left to another run on this store")
    for summary in summarize(load_rows(outcome.store, outcome.cell_hashes)):
        click.echo(f"\n{run_report(summary, confusion=confusion)}")
