"""Where a run's time goes, and what each speed-up saves, on a small real grid.

`profile_grid` runs `bench run` itself (the question task, every level, dev scenarios) into a
scratch store under a `bench.profiling.Profile`, so its sections (prefill, decode, sampling,
steering diagnostics, each scoring part, store writes) split the wall time of real work.
`speedups` then times each optimization against its plain counterpart on the same inputs:
perplexity with cached contexts vs the reference that reads context and text together, and
generation with vs without shared-prefix reuse.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from bench.config import load_config
from bench.data.levels import LEVELS
from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import TASKS
from bench.methods.registry import method_class
from bench.models.generation import Decoding, generate, render_prompt
from bench.models.loading import LoadedModel, load_model
from bench.perf.throughput import _timed
from bench.profiling import Profile
from bench.runner import row_seed, run
from bench.scoring.fluency import ContextReader, perplexities
from bench.store import ResultsStore


def profile_methods(vector_layer: int | None, sae: str | None) -> dict[str, dict[str, Any]]:
    """The methods `bench perf --profile` times ({name: hparams}): the control and prompting,
    CAA and ActAdd at `vector_layer`, query-SAE steering with `sae`, when given."""
    methods: dict[str, dict[str, Any]] = {"none": {}, "prompting": {"wording": "described"}}
    if vector_layer is not None:
        methods["caa"] = {"layer": vector_layer}
        methods["actadd"] = {"layer": vector_layer}
    if sae is not None:
        methods["query_sae"] = {"sae": sae}
    return methods


def profile_grid(
    model: str, methods: dict[str, dict[str, Any]], limit: int, overrides: list[str]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Run `methods` ({name: hparams}) on the first `limit` dev scenarios at every level into
    a scratch store; the profile summary, and each row's (scenario id, text)."""
    with tempfile.TemporaryDirectory() as scratch:
        store = str(Path(scratch) / "profile.sqlite")
        grid = [
            f"models=[{model}]",
            f"methods=[{','.join(methods)}]",
            *(f"hparams.{m}.{k}={v}" for m, hp in methods.items() for k, v in hp.items()),
            *overrides,
        ]
        config = load_config(overrides=[*grid, f"limit={limit}", f"store={store}"])
        # One scenario first, into another store: conversion, imports, the scorer and the
        # methods' fitted vectors are made (and cached) outside the profile.
        run(load_config(overrides=[*grid, "limit=1", f"store={scratch}/warm.sqlite"]))
        with Profile() as profile:
            summary = run(config)
        with ResultsStore(store) as results:
            texts = [(row.scenario_id, row.text) for row in results.rows()]
    return {
        "config": {
            "methods": methods,
            "limit": limit,
            "batch_tokens": config.batch_tokens,
            "overrides": overrides,
        },
        "rows": summary.written,
        "wall_s": round(profile.wall_s, 2),
        "rows_per_s": round(summary.written / profile.wall_s, 3),
        "sections": profile.summary(),
    }, texts


def speedups(model: str, texts: list[tuple[str, str]], rows: int = 48) -> dict[str, Any]:
    """Cached vs uncached perplexity on the grid's texts, and generation with vs without
    prefix reuse on `rows` prompting rows (every level of the first scenarios)."""
    lm = load_model(model)
    task = TASKS["question"]
    scenarios = {s["id"]: Scenario.from_row(s) for s in load_scenarios("dev")}
    contexts = [render_prompt(lm, task.messages(scenarios[sid]), task.cue) for sid, _ in texts]
    bodies = [text for _, text in texts]
    reference, plain_s = _timed(lambda: perplexities(lm, contexts, bodies))
    cached, cached_s = _timed(lambda: ContextReader(lm).perplexities(contexts, bodies))
    drift = max(
        (abs(a - b) / a for a, b in zip(reference, cached, strict=True) if not math.isnan(a)),
        default=0.0,
    )
    return {
        "perplexity": {
            "texts": len(bodies),
            "uncached_s": round(plain_s, 3),
            "cached_s": round(cached_s, 3),
            "cached_over_uncached": round(cached_s / plain_s, 4),
            "max_relative_difference": drift,
        },
        "prefix_reuse": _reuse(lm, task, list(scenarios.values()), rows),
    }


def _reuse(lm: LoadedModel, task: Any, scenarios: list[Scenario], rows: int) -> dict[str, Any]:
    steerer = method_class("prompting")(task, wording="described")
    picked = [(s, level) for s in scenarios for level in LEVELS][:rows]
    prompts = [steerer.prompt(s, level) for s, level in picked]
    seeds = [row_seed(0, s.id, level) for s, level in picked]
    results: dict[str, tuple[list, float]] = {}
    for reuse in (False, True, False, True):  # alternated, so machine noise hits both
        out, seconds = _timed(
            lambda r=reuse: generate(
                lm, prompts, Decoding(), seeds, cue=task.cue, stop=task.stop, reuse=r
            )
        )
        key = "with" if reuse else "without"
        best = results.get(key, (None, math.inf))[1]
        results[key] = (out, min(seconds, best))
    same = sum(a == b for a, b in zip(results["with"][0], results["without"][0], strict=True))
    return {
        "rows": len(prompts),
        "without_s": round(results["without"][1], 3),
        "with_s": round(results["with"][1], 3),
        "with_over_without": round(results["with"][1] / results["without"][1], 4),
        "identical_texts": same,
    }
