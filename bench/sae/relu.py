"""ReLU SAE with an L1 penalty on the codes weighted by the decoder norms (Anthropic 2024)."""

from __future__ import annotations

from typing import ClassVar

import torch

from bench.sae.base import SparseAutoencoder


class ReLUSAE(SparseAutoencoder):
    """Sparsity comes from the penalty `l1_coefficient * sum_i z_i * ||W_dec_i||`."""

    architecture: ClassVar[str] = "relu"

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        return pre.relu()

    def sparsity_loss(self, pre: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.config.l1_coefficient * (z * self.W_dec.norm(dim=1)).sum(-1).mean()
