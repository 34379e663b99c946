"""`bench summary`, `bench figures`, `bench paper`: the results file, the figures and the
paper's generated files, from exports alone (no model, no store)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from bench.cli.app import friendly_errors, main


def _inputs(
    exports: tuple[str, ...], validation: str | None, sae: tuple[str, ...], reads: str | None
) -> Any:
    from bench.report.summary import load_inputs

    return load_inputs(list(exports), validation, list(sae), reads)


def _input_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The inputs of `bench summary` and `bench figures`: exports, validation, SAE evaluations."""
    for option in reversed(
        [
            click.argument("exports", nargs=-1, type=click.Path(dir_okay=False)),
            click.option(
                "--validation",
                type=click.Path(dir_okay=False),
                help="The scorer's validation (`bench score validate --json`).",
            ),
            click.option(
                "--sae",
                multiple=True,
                type=click.Path(dir_okay=False),
                help="An SAE evaluation (`bench sae eval --json`; repeatable).",
            ),
            click.option(
                "--reads",
                type=click.Path(dir_okay=False),
                help="Blind reads of each model's control texts (annotations JSONL).",
            ),
        ]
    ):
        command = option(command)
    return command


@main.command()
@_input_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The JSON file.")
@friendly_errors
def summary(
    exports: tuple[str, ...],
    out: str,
    validation: str | None,
    sae: tuple[str, ...],
    reads: str | None,
) -> None:
    """The results file: flat records per model, method, setting, split and level with 95%
    intervals, paired differences, power, scorer validation, SAE quality and provenance."""
    from bench.atomic import write_atomically
    from bench.report.summary import build_summary, summary_json

    made = build_summary(_inputs(exports, validation, sae, reads))
    write_atomically(out, summary_json(made))
    click.echo(f"wrote {out}: {len(made['cells'])} cell records", err=True)


@main.command()
@_input_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder.")
@friendly_errors
def figures(
    exports: tuple[str, ...],
    out: str,
    validation: str | None,
    sae: tuple[str, ...],
    reads: str | None,
) -> None:
    """The paper's figures (PNG and PDF) from exports: frontier, test split, paired
    differences, confusion, steerability, mechanism, SAE quality, scorer validity, power."""
    from bench.report.figures import draw_figures
    from bench.report.summary import build_summary

    inputs = _inputs(exports, validation, sae, reads)
    drawn = draw_figures(build_summary(inputs), inputs.rows, out)
    for name, reason in drawn.skipped.items():
        click.echo(f"not drawn: {name} ({reason})", err=True)
    click.echo(f"wrote {len(drawn.files)} files to {out}", err=True)


@main.command()
@click.option(
    "--summary",
    "summary_path",
    default="results/paper/summary.json",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The results file (`bench summary`).",
)
@click.option(
    "--out", default="paper/generated", show_default=True, type=click.Path(file_okay=False)
)
@friendly_errors
def paper(summary_path: str, out: str) -> None:
    """The paper's generated files from the summary: values.tex (every number the prose uses,
    as \\val{key}) and the tables."""
    from bench.report.paper import write_paper_files
    from bench.report.summary import read_summary

    written = write_paper_files(read_summary(summary_path), out, source=summary_path)
    click.echo(f"wrote {len(written)} files to {out}", err=True)
