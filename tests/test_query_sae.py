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
from bench.methods import sae_site
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
    exemplars = load_exemplars(form="question").select(range(0, 360, 7))  # every level
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
        q: torch.Tensor, steer: torch.Tensor, levels: torch.Tensor, **settings: object
    ) -> torch.Tensor:
        seen.append((q.shape[1], int(steer.sum())))
        return original(q, steer, levels, **settings)

    steerer.edit = record  # type: ignore[method-assign]
    prompts = [TASK.messages(s) for s in SCENARIOS]
    with steerer.steering(tiny_llama, Level.APPLY, **{**SETTINGS, "positions": positions}):
        generate(  # one prompt pass (no prefix reuse), so the first edit is the whole prompt
            tiny_llama, prompts, Decoding(max_new_tokens=3, greedy=True), cue=TASK.cue, reuse=False
        )
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
        tiny_llama, [Level.CREATE] * 2, prompts, texts, **{**SETTINGS, "strength": 0.0}
    )
    moved = steerer.diagnostics(
        tiny_llama, [Level.CREATE] * 2, prompts, texts, **{**SETTINGS, "strength": 50.0}
    )
    assert all(d["attention_kl"] == pytest.approx(0.0, abs=1e-6) for d in zero)
    assert all(d["attention_kl"] > 0 for d in moved)


def test_prototypes_are_read_once_per_sae_and_kept(
    tiny_llama: LoadedModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second fit with the same SAE, model, task and exemplars reads no exemplar and gets
    the same prototypes; another SAE's are computed anew."""
    first = _steerer(tiny_llama, tmp_path)
    reads: list[int] = []
    original = sae_site.reply_activations
    monkeypatch.setattr(
        sae_site,
        "reply_activations",
        lambda *args: reads.append(1) or original(*args),
    )
    again = QuerySAESteering(TASK, sae=first.sae_dir)
    again.fit(tiny_llama, load_exemplars(form="question").select(range(0, 360, 7)))
    assert reads == []
    assert torch.equal(again.prototypes, first.prototypes)
    other = save_query_sae(tiny_llama, tmp_path / "other", 2 * tiny_llama.adapter.query_width, 4, 1)
    fresh = QuerySAESteering(TASK, sae=other)
    fresh.fit(tiny_llama, load_exemplars(form="question").select(range(0, 360, 7)))
    assert reads == [1]


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


def test_attention_read_up_to_the_steered_layer_equals_a_full_pass(tiny_lm: LoadedModel) -> None:
    """The diagnostics read one block's attention and stop there: the same weights as a full
    eager pass returns for that layer, and no later layer runs."""
    from bench.models.attention import attention_weights, eager_attention

    site = tiny_lm.adapter.query(0)
    ids = torch.tensor([[1, 5, 6, 7, 8, 9]])
    later = []
    handle = tiny_lm.adapter.residual(1).module.register_forward_hook(lambda *_: later.append(True))
    try:
        weights = attention_weights(tiny_lm.model, site, ids)
    finally:
        handle.remove()
    with torch.no_grad(), eager_attention(tiny_lm.model):
        full = tiny_lm.model(input_ids=ids, output_attentions=True).attentions[0]
    assert torch.equal(weights, full) and not later


@pytest.mark.parametrize("alias", ["tiny-llama", "tiny-phi3", "tiny-gpt2"])
def test_attention_shift_read_on_a_shared_prompt_equals_reading_each_text_whole(
    alias: str, tmp_path: Path
) -> None:
    """The batched read (prompts once, a clean and a steered copy per row) gives what reading
    every text whole twice gives, for rows of different levels and lengths."""
    from bench.models.loading import load_model

    lm = load_model(alias, dtype="float32", device="cpu")
    steerer = _steerer(lm, tmp_path)
    scenarios = [*SCENARIOS, *SCENARIOS]
    prompts = [TASK.messages(s) for s in scenarios]
    texts = ["What would change if the cell had none?", "Why 4?", "How?", "Name one part."]
    levels = [Level.CREATE, Level.APPLY, Level.REMEMBER, Level.ANALYZE]
    settings = {**SETTINGS, "strength": 5.0}
    batched = steerer.diagnostics(lm, levels, prompts, texts, **settings)
    whole = []
    for level, messages, text in zip(levels, prompts, texts, strict=True):
        context = render_prompt(lm, messages, TASK.cue)
        head = lm.tokenizer(context, add_special_tokens=False)["input_ids"]
        tail = lm.tokenizer(" " + text, add_special_tokens=False)["input_ids"]
        whole.append(steerer._shift_whole(lm, level, head, tail, settings))
    assert all(d["attention_kl"] > 0 for d in whole)
    for got, want in zip(batched, whole, strict=True):
        assert got == pytest.approx(want, rel=1e-4, abs=1e-6)
