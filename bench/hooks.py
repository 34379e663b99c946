"""Forward hooks in context managers: read or replace a site's output; always removed.

A `Site` names a module and, for fused projections (Phi-3 `qkv_proj`, GPT-2 `c_attn`), the
channel slice that belongs to the site. Hooks see the module's output; for modules that
return tuples (some decoder blocks) they act on the first element.

During generation `bench.models.generation` sets `current_phase()`, so a steering hook can
tell the prompt forward pass (prefill) from the forward passes of generated tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Site:
    """A place in the model whose activations can be read or replaced."""

    module: nn.Module
    channels: slice | None = None
    """Which output channels form the site (None: all of them)."""


@dataclass(frozen=True)
class Phase:
    """Which positions the current forward pass holds."""

    prompt: bool
    """True in the prefill pass: every position is a prompt position (left padding masked)."""
    step: int
    """0 for the prefill, k for the pass that consumes the k-th generated token."""
    attention_mask: torch.Tensor | None = None
    """[batch, seq] mask of real (1) vs padding (0) tokens, for the prefill pass."""


_PHASE: ContextVar[Phase | None] = ContextVar("bench_generation_phase", default=None)


def current_phase() -> Phase | None:
    """The phase of the forward pass running now, or None outside `generate`."""
    return _PHASE.get()


@contextmanager
def phase(value: Phase) -> Iterator[None]:
    """Mark the forward passes inside the block as `value` (used by the generation loop)."""
    token = _PHASE.set(value)
    try:
        yield
    finally:
        _PHASE.reset(token)


def _main_tensor(output: torch.Tensor | tuple) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def _with_main_tensor(output: torch.Tensor | tuple, tensor: torch.Tensor) -> torch.Tensor | tuple:
    return (tensor, *output[1:]) if isinstance(output, tuple) else tensor


@contextmanager
def read_site(site: Site) -> Iterator[list[torch.Tensor]]:
    """Collect the site's output of every forward pass (detached) into the yielded list."""
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, _inputs: tuple, output: torch.Tensor | tuple) -> None:
        tensor = _main_tensor(output)
        if site.channels is not None:
            tensor = tensor[..., site.channels]
        captured.append(tensor.detach())

    handle = site.module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


@contextmanager
def replace_site(site: Site, edit: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the site's output by `edit(output)` (same shape) in every forward pass."""

    def hook(
        _module: nn.Module, _inputs: tuple, output: torch.Tensor | tuple
    ) -> torch.Tensor | tuple:
        tensor = _main_tensor(output)
        if site.channels is None:
            new = edit(tensor)
        else:
            new = tensor.clone()
            new[..., site.channels] = edit(tensor[..., site.channels])
        if new.shape != tensor.shape:
            raise ValueError(
                f"a site edit changed the shape {tuple(tensor.shape)} -> {tuple(new.shape)}"
            )
        return _with_main_tensor(output, new)

    handle = site.module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
