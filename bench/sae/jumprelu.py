"""JumpReLU SAE (Rajamanoharan et al. 2024): a latent fires only above its learned threshold.

`z = pre * H(pre - theta)`. The step function has no useful gradient, so the threshold is
trained through straight-through pseudo-derivatives with a rectangle kernel of width
`jumprelu_bandwidth`, and sparsity is an L0 penalty on the number of firing latents.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import nn

from bench.sae.base import SAEConfig, SparseAutoencoder


def _rectangle(x: torch.Tensor) -> torch.Tensor:
    return ((x > -0.5) & (x < 0.5)).to(x.dtype)


class _JumpReLU(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, pre: torch.Tensor, threshold: torch.Tensor, bandwidth: float
    ) -> torch.Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return pre * (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        pre, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        grad_pre = grad * (pre > threshold).to(pre.dtype)
        grad_threshold = -(threshold / bandwidth) * _rectangle((pre - threshold) / bandwidth) * grad
        return grad_pre, grad_threshold.reshape(-1, threshold.shape[-1]).sum(0), None


class _Step(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, pre: torch.Tensor, threshold: torch.Tensor, bandwidth: float
    ) -> torch.Tensor:
        ctx.save_for_backward(pre, threshold)
        ctx.bandwidth = bandwidth
        return (pre > threshold).to(pre.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        pre, threshold = ctx.saved_tensors
        bandwidth = ctx.bandwidth
        grad_threshold = -(1.0 / bandwidth) * _rectangle((pre - threshold) / bandwidth) * grad
        return None, grad_threshold.reshape(-1, threshold.shape[-1]).sum(0), None


class JumpReLUSAE(SparseAutoencoder):
    """Thresholds are stored as log-thresholds while training, saved as `threshold`."""

    architecture: ClassVar[str] = "jumprelu"

    def __init__(self, config: SAEConfig) -> None:
        super().__init__(config)
        start = math.log(config.jumprelu_init_threshold)
        self.log_threshold = nn.Parameter(torch.full((config.d_sae,), start))

    @property
    def threshold(self) -> torch.Tensor:
        return self.log_threshold.exp()

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        return _JumpReLU.apply(pre, self.threshold, self.config.jumprelu_bandwidth)

    def sparsity_loss(self, pre: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        l0 = _Step.apply(pre, self.threshold, self.config.jumprelu_bandwidth).sum(-1).mean()
        return self.config.l1_coefficient * l0

    def extra_state(self) -> dict[str, torch.Tensor]:
        return {"threshold": self.threshold.detach().clone()}

    @torch.no_grad()
    def load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.log_threshold.copy_(state["threshold"].clamp(min=1e-12).log())
