"""Shared fixtures: a private cache for the whole session, tiny random-weight models.

Tests never read the user's `~/.cache/bloom-bench`: a stale converted model or pickled scorer
there could make a test pass that fails on a clean machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.models.loading import LoadedModel, load_model
from bench.models.tiny import TINY_CONFIGS
from bench.sae.untrained import save_untrained_query_sae as save_query_sae

TINY_ALIASES = sorted(TINY_CONFIGS)
__all__ = ["save_query_sae"]  # tests import it from here


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
