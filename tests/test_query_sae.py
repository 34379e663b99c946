"""Query-SAE steering: the code moves toward the prototype, strength 0 is the unsteered
model token for token, the right positions are steered, on every architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import save_query_sae

from bench.data.levels import Level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario
from bench.data.tasks import TASKS
from bench.methods.query_sae import QuerySAESteering, code_step
from bench.models.generation import Decoding, generate, render_prompt
from bench.models.loading import LoadedModel
from bench.sae.base import SAEConfig
from bench.sae.registry import make_sae

TASK = TASKS["question"]
SCENARIOS = [
    Scenario("a", "biology", "What do mitochondria do?", "They make proteins."),
    Scenario("b", "algebra", "Solve 2x + 3 = 11 for x.", "x = 4"),
]
SETTINGS = {"strength": 0.5, "steps": 3, "anchor": 0.0, "distance": "l2", "positions": "generated"}


@pytest.mark.parametrize("distance", ["l2", "cosine"])
def test_gradient_steps_lower_the_distance_to_the_prototype(distance: str) -> None:
    generator = torch.Generator().manual_seed(0)
    z0 = torch.rand(8, 32, generator=generator) * (torch.rand(8, 32, generator=generator) < 0.2)
    prototype = torch.rand(32, generator=generator)

    def gap(z: torch.Tensor) -> torch.Tensor:
        if distance == "cosine":
            return 1 - torch.nn.functional.cosine_similarity(z, prototype[None], dim=-1)
        return (z - prototype).pow(2).sum(-1)

    moved = code_step(z0, prototype, steps=3, lr=0.1, anchor=0.1, distance=distance)
    assert (gap(moved) < gap(z0)).all() and (moved >= 0).all()
    assert torch.equal(code_step(z0, prototype, steps=3, lr=0.0, anchor=0.1, distance=distance), z0)
    farther = code_step(z0, prototype, steps=3, lr=0.1, anchor=10.0, distance=distance)
    assert ((farther - z0).norm(dim=-1) < (moved - z0).norm(dim=-1)).all()  # the anchor holds


def _steerer(lm: LoadedModel, tmp_path: Path) -> QuerySAESteering:
    directory = save_query_sae(
        lm, tmp_path / lm.alias, d_sae=4 * lm.adapter.query_width, k=8, layer=1
    )
    steerer = QuerySAESteering(TASK, sae=directory)
    exemplars = load_exemplars(form="question").select(range(0, 360, 15))  # every level
    steerer.fit(lm, exemplars)
    return steerer


def test_strength_zero_is_the_unsteered_model_and_strength_moves_it(
    tiny_lm: LoadedModel, tmp_path: Path
) -> None:
    steerer = _steerer(tiny_lm, tmp_path)
    prompts = [TASK.messages(s) for s in SCENARIOS]
    decoding = Decoding(max_new_tokens=12, greedy=True)
    plain = generate(tiny_lm, prompts, decoding, cue=TASK.cue)
    with steerer.steering(tiny_lm, Level.CREATE, **{**SETTINGS, "strength": 0.0}):
        zero = generate(tiny_lm, prompts, decoding, cue=TASK.cue)
    assert [g.text for g in zero] == [g.text for g in plain]
    ids = tiny_lm.tokenizer("Subject: biology. Explain the answer.", return_tensors="pt")
    with torch.no_grad():
        clean = tiny_lm.model(**ids).logits
        with steerer.steering(tiny_lm, Level.CREATE, **{**SETTINGS, "strength": 50.0}):
            moved = tiny_lm.model(**ids).logits
    assert not torch.allclose(clean, moved)
    assert set(steerer.artifacts()) == {"sae_weights", "prototypes"}


@pytest.mark.parametrize("positions", ["generated", "all"])
def test_steered_positions(tiny_llama: LoadedModel, tmp_path: Path, positions: str) -> None:
    steerer = _steerer(tiny_llama, tmp_path)
    seen: list[tuple[int, int]] = []
    original = steerer.edit

    def record(
        q: torch.Tensor, steer: torch.Tensor, level: Level, **settings: object
    ) -> torch.Tensor:
        seen.append((q.shape[1], int(steer.sum())))
        return original(q, steer, level, **settings)

    steerer.edit = record  # type: ignore[method-assign]
    prompts = [TASK.messages(s) for s in SCENARIOS]
    with steerer.steering(tiny_llama, Level.APPLY, **{**SETTINGS, "positions": positions}):
        generate(tiny_llama, prompts, Decoding(max_new_tokens=3, greedy=True), cue=TASK.cue)
    (_, prefill_steered), *decode = seen
    real_prompt_tokens = sum(
        len(tiny_llama.tokenizer(render_prompt(tiny_llama, p, TASK.cue))["input_ids"])
        for p in prompts
    )
    expected = 2 if positions == "generated" else real_prompt_tokens  # padding never steered
    assert prefill_steered == expected
    assert all(length == 1 and steered == 2 for length, steered in decode)


def test_attention_shift_is_zero_at_strength_zero(tiny_llama: LoadedModel, tmp_path: Path) -> None:
    steerer = _steerer(tiny_llama, tmp_path)
    prompts = [TASK.messages(s) for s in SCENARIOS]
    texts = ["What would change if the cell had none?", "Why is 4 the answer?"]
    zero = steerer.diagnostics(
        tiny_llama, Level.CREATE, prompts, texts, **{**SETTINGS, "strength": 0.0}
    )
    moved = steerer.diagnostics(
        tiny_llama, Level.CREATE, prompts, texts, **{**SETTINGS, "strength": 50.0}
    )
    assert all(d["attention_kl"] == pytest.approx(0.0, abs=1e-6) for d in zero)
    assert all(d["attention_kl"] > 0 for d in moved)


def test_an_sae_of_other_weights_is_refused(tiny_llama: LoadedModel, tmp_path: Path) -> None:
    from bench.errors import ConfigError

    width = tiny_llama.adapter.query_width
    config = SAEConfig(
        "topk",
        d_in=width,
        d_sae=2 * width,
        k=4,
        hook_layer=0,
        metadata={"store": {"weights_sha256": "0" * 64}},
    )
    directory = make_sae(config).save(tmp_path / "other")
    steerer = QuerySAESteering(TASK, sae=str(directory))
    with pytest.raises(ConfigError, match="other weights"):
        steerer.fit(tiny_llama, load_exemplars(form="question").select(range(6)))
