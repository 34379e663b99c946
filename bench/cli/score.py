"""`bench score`: score a CSV of texts, validate the scorer, compare its designs, and read its
agreement with the annotations."""

from __future__ import annotations

import json

import click
from tabulate import tabulate

from bench.cli.app import friendly_errors, main
from bench.errors import BenchError


class _DefaultCommandGroup(click.Group):
    """A group whose unknown first argument goes to its `file` command (`bench score X.csv`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["file", *args]
        return super().parse_args(ctx, args)


@main.group(cls=_DefaultCommandGroup)
def score() -> None:
    """Score texts with the Bloom-level classifier (`bench score FILE.csv`), or validate it."""


def _control_cuts(store: str, model: str | None, task: str):
    from bench.report.aggregate import control_cuts
    from bench.report.export import load_rows

    if model is None:
        raise BenchError("--cuts-from needs --model (perplexity is what the cuts apply to)")
    return control_cuts(load_rows(store), model, task, store)


@score.command("file")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--text-column", default="text", show_default=True)
@click.option("--question-column", help="The scenario's question (relevance, restating).")
@click.option("--answer-column", help="The student's answer (relevance, perplexity context).")
@click.option("--subject-column", help="The scenario's subject (optional).")
@click.option("--target-column", help="Target level per row (on-target, success).")
@click.option("--model", help="Model alias for perplexity given the control prompt.")
@click.option("--task", "task_name", default="question", show_default=True)
@click.option(
    "--cuts-from",
    type=click.Path(dir_okay=False),
    help="Results store whose control run (same model and task) gives the fluency cuts.",
)
@click.option("--out", type=click.Path(dir_okay=False), help="Output CSV (default: stdout).")
@click.option("--encoding", default="utf-8", show_default=True, help="The CSV's text encoding.")
@friendly_errors
def score_file(
    path: str,
    text_column: str,
    question_column: str | None,
    answer_column: str | None,
    subject_column: str | None,
    target_column: str | None,
    model: str | None,
    task_name: str,
    cuts_from: str | None,
    out: str | None,
    encoding: str,
) -> None:
    """Write every per-text criterion of the benchmark for the texts of a CSV (rows with an
    empty text get status "empty text: not scored")."""
    from bench.atomic import write_atomically
    from bench.data.tasks import task_from_config
    from bench.models.loading import load_model
    from bench.scoring.csv_scoring import CsvColumns, note_json, score_csv

    task = task_from_config(task_name)
    if model is not None and question_column is None:
        raise BenchError("--model needs --question-column and --answer-column (the context)")
    cuts = _control_cuts(cuts_from, model, task.name) if cuts_from else None
    columns = CsvColumns(text_column, question_column, answer_column, subject_column, target_column)
    lm = load_model(model) if model else None
    text, note = score_csv(path, columns, task, lm, cuts, encoding)
    if empty := note["empty_texts"]:
        lines = ", ".join(map(str, empty[:5])) + (", ..." if len(empty) > 5 else "")
        click.echo(f"warning: {len(empty)} empty text(s) not scored (lines {lines})", err=True)
    if out is None:
        click.echo(text, nl=False)
        click.echo(note_json(note), err=True)
        return
    write_atomically(out, text)
    write_atomically(f"{out}.json", note_json(note) + "\n")
    click.echo(f"wrote {out} (what was computed, with which cuts: {out}.json)", err=True)


@score.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--external",
    type=click.Path(file_okay=False),
    help="Folder of external human-labeled CSVs (text, level). Default: "
    "../shared/data/bloom-external when it exists.",
)
@friendly_errors
def validate(as_json: bool, external: str | None) -> None:
    """Macro-F1 on the held-out splits (levels, decoys, no-verb texts, task presence) and on
    external human-labeled CSVs."""
    from bench.scoring.bloom import trained_scorer
    from bench.scoring.validate import external_folder
    from bench.scoring.validate import validate as run_validation

    folder = external_folder(external)
    report = run_validation(trained_scorer(), folder)
    if folder is None:
        click.echo("no external validation folder (give --external DIR)", err=True)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    rows = [
        [name, m["n"], f"{m['accuracy']:.3f}", f"{m['macro_f1']:.3f}"] for name, m in report.items()
    ]
    click.echo(tabulate(rows, headers=["data", "n", "accuracy", "macro-F1"]))


@score.command()
@click.option("--external", type=click.Path(file_okay=False), help="Folder of external CSVs.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def designs(external: str | None, as_json: bool) -> None:
    """Compare the scorer designs on every validation set (macro-F1, training seconds); the
    chosen design has the best mean over the four project held-out sets."""
    from bench.scoring.designs import compare
    from bench.scoring.validate import external_folder

    rows = compare(external_folder(external))
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(tabulate(rows, headers="keys", floatfmt=".3f", tablefmt="github"))


@score.command()
@click.option(
    "--annotations",
    type=click.Path(dir_okay=False),
    help="Annotated generations (JSONL). Default: the project's own.",
)
@click.option(
    "--store",
    default="runs/default.sqlite",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Results store whose control run gives the fluency cuts (made by `nox -s run`).",
)
@click.option(
    "--encoding", default="utf-8", show_default=True, help="The annotations file's encoding."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def agreement(annotations: str | None, store: str, encoding: str, as_json: bool) -> None:
    """How the scorer agrees with blind human-style annotations of generated texts."""
    from bench.data.annotations import load_annotations
    from bench.scoring.agreement import agreement_report

    data = load_annotations(annotations, encoding)
    models = sorted({row["model"] for row in data})
    tasks = sorted({row["task"] for row in data})
    if len(models) != 1 or len(tasks) != 1:
        raise BenchError("annotations must come from one model and one task")
    report = agreement_report(data, _control_cuts(store, models[0], tasks[0]))
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in report["lines"]:
        click.echo(line)
