"""Read attention distributions: switch a model to eager attention for a block of passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from transformers import PreTrainedModel


@contextmanager
def eager_attention(model: PreTrainedModel) -> Iterator[None]:
    """Eager attention (which can return attention weights) inside the block, then back."""
    previous = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(previous)
