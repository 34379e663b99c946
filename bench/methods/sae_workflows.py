"""SAE workflows that read the exemplars the way a method does: AlignSAE's stage 2 (the
levels' labeled activations, fit / validation / held-out scenarios, provenance) and an SAE's
evaluation (with its held-out binding and its cost against stage 1 when it is aligned)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets

from bench.data.levels import LEVELS, Level
from bench.data.roles import dataset_sha256, load_exemplars
from bench.data.tasks import TASKS
from bench.errors import DataError
from bench.methods.activations import reply_activations
from bench.models.loading import LoadedModel, load_model
from bench.sae.activations import evenly_spaced, heldout_documents, load_split, site_for
from bench.sae.align import AlignSettings, LabeledTexts, align, binding_metrics
from bench.sae.base import SparseAutoencoder, weights_sha256
from bench.sae.metrics import evaluate
from bench.sae.registry import load_sae


def level_texts(
    lm: LoadedModel, sae: SparseAutoencoder, exemplars: datasets.Dataset, scenarios: set[str]
) -> LabeledTexts:
    """The exemplars of `scenarios` as activations at the SAE's site (read as replies to the
    question task's prompt), labeled by level."""
    chosen = exemplars.filter(lambda row: row["scenario_key"] in scenarios)
    site = site_for(lm, sae.config.site, sae.config.hook_layer)
    activations = reply_activations(lm, site, TASKS["question"], chosen)
    return LabeledTexts(activations, [Level(level).index for level in chosen["level"]])


def split_scenarios(
    keys: list[str], heldout_every: int, validation_every: int | None
) -> tuple[list[str], list[str], list[str]]:
    """(fit, validation, held-out) scenario keys: every `heldout_every`th key (sorted) held
    out, then every `validation_every`th of the rest kept for validation (none without it)."""
    ordered = sorted(set(keys))
    heldout = ordered[heldout_every - 1 :: heldout_every]
    rest = [key for key in ordered if key not in set(heldout)]
    validation = rest[validation_every - 1 :: validation_every] if validation_every else []
    fit = [key for key in rest if key not in set(validation)]
    return fit, validation, heldout


def align_stage1(
    stage1: str,
    out: str,
    settings: AlignSettings,
    heldout_every: int,
    validation_every: int | None,
) -> dict[str, Any]:
    """AlignSAE stage 2 from a stage-1 SAE directory: fit on the fit scenarios' exemplars,
    read the curve's binding on the validation ones (else the fit set), hold the rest out for
    `evaluate_sae`. Returns the training log."""
    if Path(out).exists():
        raise DataError(f"{out} exists; choose a new --out")
    base = load_sae(stage1)
    store = base.config.metadata.get("store", {}).get("directory")
    if not store or not Path(store).is_dir():
        raise DataError(f"{stage1}: its activation store {store!r} is not on this machine")
    lm = load_model(base.config.model_name)
    exemplars = load_exemplars(form="question")
    fit_keys, validation_keys, heldout_keys = split_scenarios(
        list(exemplars["scenario_key"]), heldout_every, validation_every
    )
    fit = level_texts(lm, base, exemplars, set(fit_keys))
    validation = level_texts(lm, base, exemplars, set(validation_keys)) if validation_keys else None
    provenance = {
        "stage1": str(stage1),
        "stage1_sha256": weights_sha256(stage1),
        "exemplars": dataset_sha256(exemplars),
        "heldout_scenarios": heldout_keys,
        "validation_scenarios": validation_keys,
    }
    concepts = [level.value for level in LEVELS]
    return align(base, store, concepts, fit, validation, settings, out, provenance)


def evaluate_sae(directory: str, store: str | None, limit: int | None) -> dict[str, Any]:
    """Explained variance, L0, alive latents, CE loss score and KL on the held-out split of
    `store` (default: the SAE's own); CE/KL on `limit` held-out documents evenly spaced from
    the split's first to its last (`evenly_spaced`).
    An aligned SAE adds its binding on the held-out scenarios, stage 1's numbers and what
    alignment cost against them (`*_drop`)."""
    sae = load_sae(directory)
    store = store or sae.config.metadata.get("store", {}).get("directory")
    if not store or not Path(store).is_dir():
        raise DataError("give --store: the activation store with the held-out split")
    lm = load_model(sae.config.model_name)
    docs = heldout_documents(store)
    if limit is not None:
        docs = [docs[i] for i in evenly_spaced(len(docs), limit)]
    activations = load_split(store, "heldout")
    report: dict[str, Any] = {
        "sae": directory,
        "config": sae.config.saelens_cfg()["bench"],
        "splice_documents": len(docs),
        **evaluate(lm, sae, activations, docs),
    }
    aligned = sae.config.metadata.get("align")
    if aligned:  # binding, and what alignment cost against stage 1 on the same text
        exemplars = load_exemplars(form="question")
        heldout = level_texts(lm, sae, exemplars, set(aligned["heldout_scenarios"]))
        report.update(binding_metrics(sae, heldout, aligned["settings"]["pooling"]))
        stage1 = evaluate(lm, load_sae(aligned["stage1"]), activations, docs)
        report["stage1"] = stage1
        for name in ("explained_variance", "ce_loss_score"):
            report[f"{name}_drop"] = stage1[name] - report[name]
    return report
