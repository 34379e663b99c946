"""Shared fixtures: tiny random-weight models of every supported architecture."""

from __future__ import annotations

import pytest

from bench.models.loading import LoadedModel, load_model
from bench.models.tiny import TINY_CONFIGS

TINY_ALIASES = sorted(TINY_CONFIGS)


@pytest.fixture(params=TINY_ALIASES)
def tiny_lm(request: pytest.FixtureRequest) -> LoadedModel:
    """Each tiny architecture in float32 (exact comparisons)."""
    return load_model(request.param, dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tiny_llama() -> LoadedModel:
    return load_model("tiny-llama", dtype="float32", device="cpu")
