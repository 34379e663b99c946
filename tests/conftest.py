"""Shared fixtures: a private cache for the whole session, tiny random-weight models.

Tests never read the user's `~/.cache/bloom-bench`: a stale converted model or pickled scorer
there could make a test pass that fails on a clean machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from bench.models.loading import LoadedModel, load_model
from bench.models.tiny import TINY_CONFIGS

TINY_ALIASES = sorted(TINY_CONFIGS)


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """BENCH_CACHE points at a fresh directory for the whole test session."""
    path = tmp_path_factory.mktemp("bench-cache")
    previous = os.environ.get("BENCH_CACHE")
    os.environ["BENCH_CACHE"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("BENCH_CACHE", None)
    else:
        os.environ["BENCH_CACHE"] = previous


@pytest.fixture(params=TINY_ALIASES)
def tiny_lm(request: pytest.FixtureRequest) -> LoadedModel:
    """Each tiny architecture in float32 (exact comparisons)."""
    return load_model(request.param, dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tiny_llama() -> LoadedModel:
    return load_model("tiny-llama", dtype="float32", device="cpu")


def save_query_sae(
    lm: LoadedModel, directory: Path, d_sae: int, k: int, layer: int, slots: list[str] | None = None
) -> str:
    """A random TopK SAE on `lm`'s query at `layer` (grown by concept `slots`, if given),
    saved to `directory` and marked as read from `lm`'s weights."""
    from bench.sae.align import grow
    from bench.sae.base import SAEConfig
    from bench.sae.registry import make_sae

    width = lm.adapter.query_width
    config = SAEConfig(
        "topk",
        d_in=width,
        d_sae=d_sae,
        k=k,
        hook_layer=layer,
        site="query",
        metadata={"store": {"weights_sha256": lm.weights_sha256}},
    )
    torch.manual_seed(0)
    sae = make_sae(config)
    if slots:
        sae = grow(sae, slots)
    return str(sae.save(directory))
