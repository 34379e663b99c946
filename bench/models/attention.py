"""Attention implementations: grouped-query SDPA without copied key/value heads (the CPU
default), eager attention for a block of passes, and one attention block's weights read by
running the model only up to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from bench.hooks import Site

GROUPED_SDPA = "sdpa_grouped"
"""transformers' `sdpa`, except that a pass of several query positions (a prompt, a
teacher-forced text) hands grouped key/value heads to torch as they are (`enable_gqa`)."""


def grouped_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """SDPA for a masked multi-position pass with grouped key/value heads, without
    `repeat_kv`'s copy of every layer's keys and values per query head (a tenth of a CPU
    run's prefill and perplexity time): the same numbers (tested). Every other case (one
    query position, no mask, position bias, soft-capping) is transformers' `sdpa` itself."""
    plain = (
        getattr(module, "num_key_value_groups", 1) == 1
        or query.shape[2] == 1
        or attention_mask is None
        or any(kwargs.get(name) is not None for name in ("position_bias", "softcap"))
        or kwargs.get("output_attentions", False)
    )
    if plain:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout, scaling, is_causal, **kwargs
        )
    out = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout,
        scale=scaling,
        enable_gqa=True,
    )
    return out.transpose(1, 2).contiguous(), None


AttentionInterface.register(GROUPED_SDPA, grouped_sdpa)
AttentionMaskInterface.register(GROUPED_SDPA, sdpa_mask)


def use_grouped_sdpa(model: PreTrainedModel) -> None:
    """Switch a model that runs transformers' `sdpa` on a CPU to `GROUPED_SDPA`. Not on a
    GPU: there a masked grouped call leaves the fused kernels for the math fallback."""
    if model.device.type == "cpu" and model.config._attn_implementation == "sdpa":
        model.set_attn_implementation(GROUPED_SDPA)


@contextmanager
def eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """Eager attention (which can return attention weights) inside the block, then back."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)


class _Stop(Exception):
    """Raised by a hook to end a forward pass once what it needs is read."""


def _attention_block(model: PreTrainedModel, site: Site) -> torch.nn.Module:
    name = next(n for n, m in model.named_modules() if m is site.module)
    return model.get_submodule(name.rsplit(".", 1)[0])


@torch.no_grad()
def attention_weights(
    model: PreTrainedModel, site: Site, input_ids: torch.Tensor, **inputs: Any
) -> torch.Tensor:
    """[batch, heads, seq, keys] attention weights of the block that holds `site` (its query
    projection), in eager attention; the layers after it are not run. `inputs` go to the
    model's forward (attention mask, position ids, a KV cache)."""
    captured: list[torch.Tensor] = []

    def hook(_module: torch.nn.Module, _inputs: tuple, output: tuple) -> None:
        captured.append(output[1])
        raise _Stop

    handle = _attention_block(model, site).register_forward_hook(hook)
    try:
        with eager_attention(model):
            model(input_ids=input_ids, **inputs)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]
