"""TopK SAE (Gao et al. 2024): keep the k largest (ReLU'd) pre-activations per token."""

from __future__ import annotations

from typing import ClassVar

import torch

from bench.sae.base import SparseAutoencoder


class TopKSAE(SparseAutoencoder):
    """Sparsity is the constraint itself: exactly at most k active latents, no penalty."""

    architecture: ClassVar[str] = "topk"

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = torch.topk(pre, self.config.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, values.relu())
