"""`bench sae`: collect a site's activations, train an SAE, align it, evaluate it."""

from __future__ import annotations

import json

import click
from tabulate import tabulate

from bench.cli.app import friendly_errors, main


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
        f"saved {settings.architecture} SAE to {out}: held-out explained variance "
        f"{last['explained_variance']:.3f}, L0 {last['l0']:.1f}, alive {last['frac_alive']:.3f}"
    )


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
    from bench.config import apply_overrides, settings_from
    from bench.methods.sae_workflows import align_stage1
    from bench.sae.align import AlignSettings

    settings = settings_from(AlignSettings, apply_overrides({}, list(overrides)), "sae align")
    log = align_stage1(stage1, out, settings, heldout_every, validation_every)
    last = log["curve"][-1]
    click.echo(
        f"saved aligned SAE to {out}: binding accuracy {last['binding_accuracy']:.3f} on the "
        f"{log['binding_read_on']} texts, explained variance {last['explained_variance']:.3f} "
        "(held-out: bench sae eval)"
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
    help="CE/KL on N evenly spaced held-out documents (default: all; explained variance "
    "always uses all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--out", type=click.Path(dir_okay=False), help="Also write the JSON to this file.")
@friendly_errors
def sae_eval(
    directory: str, store: str | None, limit: int | None, as_json: bool, out: str | None
) -> None:
    """Explained variance, L0, alive latents, CE loss score and KL on held-out text."""
    from bench.methods.sae_workflows import evaluate_sae

    report = evaluate_sae(directory, store, limit)
    text = json.dumps(report, indent=2, default=str)
    if out is not None:
        from bench.atomic import write_atomically

        write_atomically(out, text + "\n")
    if as_json:
        click.echo(text)
        return
    rows = [[k, v] for k, v in report.items() if isinstance(v, int | float)]
    click.echo(tabulate(rows, headers=["metric", "value"], floatfmt=".4f"))
