"""Forward hooks in context managers: read or replace a site's output; always removed.

A `Site` names a module and, for fused projections (Phi-3 `qkv_proj`, GPT-2 `c_attn`), the
channel slice that belongs to the site. Hooks see the module's output; for modules that
return tuples (some decoder blocks) they act on the first element.

During generation `bench.models.generation` sets `current_phase()`, so a steering hook can
tell prompt positions from generated ones. A prompt may be read in several passes (a shared
prefix once, then each row's rest; `bench.models.prefill`), and finished rows leave the batch,
so a pass's rows are not always the caller's rows: the phase says which caller row each pass
row stands for, where in its prompt each position is, and whether the pass ends the prompt.
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
    """True in a prefill pass: every position is a prompt position (padding masked)."""
    step: int
    """0 for the prefill, k for the pass that consumes the k-th generated token."""
    attention_mask: torch.Tensor | None = None
    """[batch, seq] mask of real (1) vs padding (0) tokens of this pass, for prefill passes."""
    offset: torch.Tensor | None = None
    """[batch] prompt tokens of each row read by earlier passes (None: none)."""
    last: torch.Tensor | None = None
    """[batch] bool: the row's prompt ends in this pass, so its last position produces the
    first generated token (None: every row's does)."""
    rows: torch.Tensor | None = None
    """[batch] the caller's row (e.g. the index into per-row levels) each row of this pass
    stands for (None: row i is the caller's row i)."""


def caller_rows(phase: Phase | None, batch: int, device: torch.device) -> torch.Tensor:
    """[batch] the caller's row of each row of the current pass."""
    if phase is None or phase.rows is None:
        return torch.arange(batch, device=device)
    return phase.rows.to(device)


def prompt_ends(phase: Phase | None, batch: int, device: torch.device) -> torch.Tensor:
    """[batch] bool: whether the row's last position in this prompt pass is its prompt's last."""
    if phase is None or phase.last is None:
        return torch.ones(batch, dtype=torch.bool, device=device)
    return phase.last.to(device)


def prompt_index(phase: Phase | None, shape: tuple[int, int], device: torch.device) -> torch.Tensor:
    """[batch, seq] each position's index among its row's real prompt tokens (-1 at padding).
    Outside generation every position is real and the pass starts the text."""
    batch, seq = shape
    if phase is None or phase.attention_mask is None:
        return torch.arange(seq, device=device).expand(batch, seq)
    mask = phase.attention_mask.to(device).long()
    index = mask.cumsum(-1) - 1
    if phase.offset is not None:
        index = index + phase.offset.to(device)[:, None]
    return index.masked_fill(mask == 0, -1)


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
