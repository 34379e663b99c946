"""The paper's architectures at their real sizes (random weights): prefill, decode and each
method's steered/plain time, with peak memory, and the checks that need no trained weights
(sites have the documented shapes; strength 0 is the unsteered output).

Methods fit on six one-line exemplars under a short task, and the SAE methods use a random
TopK SAE of the real query width (8x, k=32; aligned: grown by six level slots): speed depends
on shapes, not on what was learned. On a CPU, memory is the process's peak resident size so
far (it only grows); on a GPU, the peak allocated during each step.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import datasets
import torch

from bench.data.levels import LEVELS
from bench.data.tasks import Task
from bench.hooks import read_site
from bench.methods.registry import method_class
from bench.models.fullsize import FULLSIZE_CONFIGS, random_weights
from bench.models.generation import Decoding, generate, prompt_ids
from bench.models.loading import DTYPES, LoadedModel
from bench.models.prefill import Reach
from bench.profiling import Profile
from bench.sae.untrained import save_untrained_query_sae

SHORT_TASK = Task(name="perf", system="Be brief.", request="Ask one question.", cue="Q:")
WORDS = "the cell makes energy from food and the student asked why that matters"


class _Steps:
    """Wall time and peak memory of named steps."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.records: list[dict[str, Any]] = []

    def run(self, name: str, action: Callable[[], Any]) -> Any:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        start = time.perf_counter()
        value = action()
        seconds = time.perf_counter() - start
        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.records.append({"step": name, "seconds": round(seconds, 3), "peak_bytes": peak})
        return value


def _exemplars() -> datasets.Dataset:
    return datasets.Dataset.from_list(
        [
            {
                "id": f"perf-{level.value}",
                "text": f"Which {level.value.lower()} question comes next?",
                "level": level.value,
                "subject": "biology",
                "question": "What do cells do?",
                "student_answer": "They grow.",
            }
            for level in LEVELS
        ]
    )


def _sites(lm: LoadedModel, layer: int, prompts: list) -> dict[str, Any]:
    """The query and residual sites' shapes on a prompt pass, against the documented ones."""
    config = lm.model.config
    heads, hidden = config.num_attention_heads, config.hidden_size
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    ids = lm.tokenizer(["hello there"] * len(prompts), return_tensors="pt")["input_ids"]
    with (
        torch.no_grad(),
        read_site(lm.adapter.query(layer)) as query,
        read_site(lm.adapter.residual(layer)) as residual,
    ):
        lm.model(input_ids=ids.to(lm.device))
    batch, seq = ids.shape
    return {
        "query": list(query[0].shape),
        "query_expected": [batch, seq, heads * head_dim],
        "residual": list(residual[0].shape),
        "residual_expected": [batch, seq, hidden],
        "ok": list(query[0].shape) == [batch, seq, heads * head_dim]
        and list(residual[0].shape) == [batch, seq, hidden],
    }


def measure_fullsize(
    arch: str,
    dtype: str = "bfloat16",
    layers: int | None = None,
    batch: int = 2,
    new_tokens: int = 4,
    device: str | None = None,
) -> dict[str, Any]:
    """Build `arch` with random weights and time plain and steered generation on `batch`
    short prompts (greedy, `new_tokens`), each method at a middle layer."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    steps = _Steps(torch.device(device))
    lm = steps.run("build", lambda: random_weights(arch, DTYPES[dtype], device, layers))
    depth = lm.adapter.n_layers
    layer = depth // 2
    prompts = [
        [{"role": "user", "content": " ".join(WORDS.split()[i:] + WORDS.split()[:i])}]
        for i in range(batch)
    ]
    prompt_tokens = len(prompt_ids(lm, prompts[:1])[0])
    decoding = Decoding(max_new_tokens=new_tokens, greedy=True)

    levels = [LEVELS[i % len(LEVELS)] for i in range(batch)]  # rows of different levels

    def timed_generate(
        context: AbstractContextManager, reach: Reach = "none"
    ) -> tuple[list, dict[str, Any]]:
        with Profile() as profile, context:
            out = generate(lm, prompts, decoding, groups=levels, reach=reach)
        return out, profile.summary() | {"wall": {"seconds": round(profile.wall_s, 3)}}

    steps.run("warm-up", lambda: generate(lm, prompts[:1], Decoding(max_new_tokens=1)))
    plain, plain_profile = steps.run("plain", lambda: timed_generate(nullcontext()))
    report: dict[str, Any] = {
        "arch": arch,
        "random_weights": True,
        "device": device,
        "dtype": dtype,
        "layers": depth,
        "full_depth": FULLSIZE_CONFIGS[arch].num_hidden_layers,
        "parameters": sum(p.numel() for p in lm.model.parameters()),
        "batch": batch,
        "prompt_tokens": prompt_tokens,
        "new_tokens": new_tokens,
        "sites": _sites(lm, layer, prompts),
        "plain": plain_profile,
        "methods": {},
    }
    exemplars = _exemplars()
    with tempfile.TemporaryDirectory() as scratch:
        width, names = lm.adapter.query_width, [level.value for level in LEVELS]
        stage1 = save_untrained_query_sae(lm, Path(scratch) / "stage1", 8 * width, 32, layer)
        aligned = save_untrained_query_sae(
            lm, Path(scratch) / "aligned", 8 * width, 32, layer, names
        )
        chosen = [
            ("caa", {"layer": layer, "scale": "unit"}, {"coefficient": 8.0}, "coefficient"),
            ("actadd", {"layer": layer}, {"coefficient": 4.0}, "coefficient"),
            (
                "query_sae",
                {"sae": stage1},
                {
                    "strength": 0.25,
                    "steps": 3,
                    "anchor": 0.1,
                    "distance": "l2",
                    "positions": "generated",
                },
                "strength",
            ),
            ("align_sae", {"sae": aligned}, {"alpha": 2.0, "positions": "generated"}, "alpha"),
        ]
        for name, build, steer, knob in chosen:
            steerer = method_class(name)(SHORT_TASK, **build)
            steps.run(f"{name} fit", lambda s=steerer: s.fit(lm, exemplars))
            reach = steerer.prompt_reach(**steer)
            _, profile = steps.run(
                f"{name} steered",
                lambda s=steerer, st=steer, r=reach: timed_generate(
                    s.steering(lm, levels, **st), r
                ),
            )
            zero = {**steer, knob: 0.0}
            unsteered, _ = steps.run(
                f"{name} at 0",
                lambda s=steerer, z=zero, r=reach: timed_generate(s.steering(lm, levels, **z), r),
            )
            report["methods"][name] = {
                "steered": profile,
                "time_ratio": round(
                    profile["wall"]["seconds"] / plain_profile["wall"]["seconds"], 4
                ),
                "zero_equals_plain": [g.text for g in unsteered] == [g.text for g in plain],
            }
            if name == "query_sae":
                texts = [g.text for g in plain]
                diagnostics = steps.run(
                    "query_sae attention shift",
                    lambda s=steerer, st=steer, t=texts: s.diagnostics(
                        lm, levels, prompts, t, **st
                    ),
                )
                report["methods"][name]["attention_kl"] = [d["attention_kl"] for d in diagnostics]
    report["steps"] = steps.records
    return report
