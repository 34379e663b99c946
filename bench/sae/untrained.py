"""Untrained SAEs on a model's query site, for tests and benchmarks: what they measure
(shapes, hooks, speed) does not depend on what an SAE has learned."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.models.loading import LoadedModel
from bench.sae.align import grow
from bench.sae.base import SAEConfig
from bench.sae.registry import make_sae


def save_untrained_query_sae(
    lm: LoadedModel,
    directory: Path,
    d_sae: int,
    k: int,
    layer: int,
    slots: list[str] | None = None,
    seed: int = 0,
) -> str:
    """A randomly initialized TopK SAE on `lm`'s query at `layer` (grown by concept `slots`,
    if given), saved to `directory` and marked as read from `lm`'s weights."""
    config = SAEConfig(
        "topk",
        d_in=lm.adapter.query_width,
        d_sae=d_sae,
        k=k,
        hook_layer=layer,
        site="query",
        metadata={"store": {"weights_sha256": lm.weights_sha256}},
    )
    torch.manual_seed(seed)
    sae = make_sae(config)
    if slots:
        sae = grow(sae, slots)
    return str(sae.save(directory))
