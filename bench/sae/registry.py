"""SAE architectures by name, and loading a saved SAE."""

from __future__ import annotations

from pathlib import Path

import torch

from bench.errors import UnknownNameError
from bench.registry import unique
from bench.sae.base import SAEConfig, SparseAutoencoder, read_config, read_weights
from bench.sae.jumprelu import JumpReLUSAE
from bench.sae.relu import ReLUSAE
from bench.sae.topk import TopKSAE

ARCHITECTURES: dict[str, type[SparseAutoencoder]] = unique(
    ((cls.architecture, cls) for cls in (TopKSAE, ReLUSAE, JumpReLUSAE)), "SAE architecture"
)


def make_sae(config: SAEConfig) -> SparseAutoencoder:
    """A freshly initialized SAE of the config's architecture."""
    if config.architecture not in ARCHITECTURES:
        names = ", ".join(ARCHITECTURES)
        raise UnknownNameError(
            f"unknown SAE architecture {config.architecture!r}; choose from: {names}"
        )
    return ARCHITECTURES[config.architecture](config)


def load_sae(directory: str | Path, device: str | torch.device = "cpu") -> SparseAutoencoder:
    """A saved SAE (cfg.json + sae_weights.safetensors), in eval mode."""
    sae = make_sae(read_config(directory))
    return sae.load_folded(read_weights(directory)).to(device)
