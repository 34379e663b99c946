"""Read attention distributions: switch a model to eager attention for a block of passes, and
read one attention block's weights running the model only up to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import PreTrainedModel

from bench.hooks import Site


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
