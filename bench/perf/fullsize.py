"""The paper's architectures at their real sizes (random weights): prefill, decode and each
method's steered/plain time, with peak memory, and the checks that need no trained weights
(sites have the documented shapes; strength 0 is the unsteered output).

Methods fit on six one-line exemplars under a short task. The SAE methods run the whole
pipeline for a few steps: query activations collected at the middle layer from short project
texts, a TopK SAE of the real query width (8x, k=32) trained on them, and AlignSAE's stage 2
on top (speed depends on shapes, not on what was learned). On a CPU, memory is the process's
peak resident size so far (it only grows); on a GPU, the peak allocated during each step.
`checks` holds what must be true whatever the weights: every site has its documented shape
and every method at strength 0 writes the unsteered text.
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

from bench.data.levels import LEVELS, Level
from bench.data.scenarios import Scenario
from bench.data.tasks import Task
from bench.hooks import read_site
from bench.methods.activations import reply_activations
from bench.methods.registry import method_class
from bench.models.fullsize import FULLSIZE_CONFIGS, random_weights
from bench.models.generation import Decoding, generate, prompt_ids
from bench.models.loading import DTYPES, LoadedModel
from bench.models.prefill import Reach
from bench.profiling import Profile
from bench.sae.activations import CollectionSettings, collect
from bench.sae.align import AlignSettings, LabeledTexts, align
from bench.sae.corpus import project_documents
from bench.sae.registry import load_sae
from bench.sae.train import TrainSettings, train

SHORT_TASK = Task(name="perf", system="Be brief.", request="Ask one question.", cue="Q:")
WORDS = "the cell makes energy from food and the student asked why that matters"
COLLECT_TOKENS = 2048
"""Query activations collected for the few-step SAE (train and held-out together)."""
SAE_BATCH = 128
"""Tokens per SAE training and alignment step (about 14 training steps per epoch)."""
ALIGN_STEPS = 8


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


def _scenario(i: int) -> Scenario:
    words = WORDS.split()
    return Scenario(f"perf-{i}", "biology", " ".join(words[i:] + words[:i]) + "?", "It grows.")


def _train_query_sae(lm: LoadedModel, layer: int, folder: Path, steps: _Steps) -> tuple[str, str]:
    """Stage 1 (collect, train) and stage 2 (align) for a few steps each: (stage1, aligned)."""
    store = folder / "store"
    docs = project_documents(lm)
    settings = CollectionSettings(layer, tokens=COLLECT_TOKENS, context=96, batch_size=4)
    steps.run("query_sae collect", lambda: collect(lm, docs, settings, store))
    stage1 = folder / "stage1"
    trained = TrainSettings(
        batch_size=SAE_BATCH, epochs=1, warmup_steps=2, eval_every=4, eval_tokens=SAE_BATCH
    )
    steps.run("query_sae train", lambda: train(store, trained, stage1, str(lm.device)))
    exemplars = _exemplars()
    site = lm.adapter.query(layer)
    labeled = LabeledTexts(
        reply_activations(lm, site, SHORT_TASK, exemplars),
        [Level(level).index for level in exemplars["level"]],
    )
    aligned = folder / "aligned"
    settings_2 = AlignSettings(
        steps=ALIGN_STEPS, warmup_steps=2, batch_size=SAE_BATCH, texts_per_step=6,
        eval_every=ALIGN_STEPS, eval_tokens=SAE_BATCH,
    )  # fmt: skip
    concepts = [level.value for level in LEVELS]
    steps.run(
        "align_sae align",
        lambda: align(load_sae(stage1), store, concepts, labeled, None, settings_2, aligned),
    )
    return str(stage1), str(aligned)


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
    scenarios = [_scenario(i) for i in range(batch)]
    prompts = [SHORT_TASK.messages(scenario) for scenario in scenarios]
    prompt_tokens = len(prompt_ids(lm, prompts[:1])[0])
    decoding = Decoding(max_new_tokens=new_tokens, greedy=True)

    levels = [LEVELS[i % len(LEVELS)] for i in range(batch)]  # rows of different levels

    def timed_generate(
        context: AbstractContextManager, reach: Reach = "none", chats: list | None = None
    ) -> tuple[list, dict[str, Any]]:
        with Profile() as profile, context:
            out = generate(lm, chats or prompts, decoding, groups=levels, reach=reach)
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
    prompting = method_class("prompting")(SHORT_TASK, wording="named")
    asked = [prompting.prompt(s, level) for s, level in zip(scenarios, levels, strict=True)]
    _, profile = steps.run("prompting steered", lambda: timed_generate(nullcontext(), chats=asked))
    report["methods"]["prompting"] = {
        "steered": profile,
        "time_ratio": round(profile["wall"]["seconds"] / plain_profile["wall"]["seconds"], 4),
    }
    with tempfile.TemporaryDirectory() as scratch:
        stage1, aligned = _train_query_sae(lm, layer, Path(scratch), steps)
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
    report["checks"] = {
        "sites_have_documented_shapes": report["sites"]["ok"],
        **{
            f"{name}_at_0_is_unsteered": method["zero_equals_plain"]
            for name, method in report["methods"].items()
            if "zero_equals_plain" in method
        },
    }
    return report
