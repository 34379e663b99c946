"""TopK SAE (Gao et al. 2024): keep the k largest (ReLU'd) pre-activations per token."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch.nn import functional as F

from bench.sae.base import SparseAutoencoder


class TopKSAE(SparseAutoencoder):
    """Sparsity is the constraint itself: exactly at most k active latents, no penalty."""

    architecture: ClassVar[str] = "topk"

    def activation(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = torch.topk(pre, self.config.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, values.relu())

    def training_pass(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sparse everywhere but the selection matmul: the k winners' pre-activations carry
        gradients through a sparse product, and the decoder reads only their rows. Same
        values and gradients as the dense pass at about a third of its cost."""
        values, indices = _TopKEncode.apply(x - self.b_dec, self.W_enc, self.b_enc, self.config.k)
        values = values.relu()
        x_hat = F.embedding_bag(indices, self.W_dec, per_sample_weights=values, mode="sum")
        fired = torch.zeros(self.config.d_sae, dtype=torch.bool, device=x.device)
        fired[indices[values.detach() > 0]] = True
        return x_hat + self.b_dec, fired, x.new_zeros(())


class _TopKEncode(torch.autograd.Function):
    """(centered inputs [n, d], W_enc [d, d_sae], b_enc, k) -> the k largest pre-activations
    per row [n, k] and their latents; the backward pass touches only those n * k entries."""

    @staticmethod
    def forward(
        ctx: Any, centered: torch.Tensor, w_enc: torch.Tensor, b_enc: torch.Tensor, k: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        values, indices = torch.topk(centered @ w_enc + b_enc, k, dim=-1)
        ctx.save_for_backward(centered, w_enc, indices)
        ctx.mark_non_differentiable(indices)
        return values, indices

    @staticmethod
    def backward(
        ctx: Any, grad: torch.Tensor, _: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None]:
        centered, w_enc, indices = ctx.saved_tensors
        n, k = indices.shape
        latents = indices.flatten()
        grad_centered = F.embedding_bag(
            indices, w_enc.T.contiguous(), per_sample_weights=grad, mode="sum"
        )
        rows = torch.arange(n, device=grad.device).repeat_interleave(k)
        scatter = torch.sparse_coo_tensor(
            torch.stack([latents, rows]),
            grad.flatten(),
            (w_enc.shape[1], n),
            check_invariants=False,
        )
        grad_w_enc = torch.sparse.mm(scatter, centered).T
        grad_b_enc = torch.zeros_like(w_enc[0]).index_add_(0, latents, grad.flatten())
        return grad_centered, grad_w_enc, grad_b_enc, None
