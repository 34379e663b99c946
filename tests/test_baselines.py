"""Baselines: coefficient 0 is the unsteered model, vectors equal hand computations and an
independent implementation (steering-vectors), the intended positions are steered, and
few-shot prompts hold the right shots."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import baselines.actadd as actadd_module
import baselines.caa as caa_module
from baselines.actadd import ActAddSteering, contrast_pair, pair_ids
from baselines.caa import DiffMeanSteering
from baselines.few_shot import FewShotPrompting
from bench.data.levels import LEVELS, Level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario
from bench.data.tasks import TASKS
from bench.hooks import read_site
from bench.methods.activations import exemplar_scenario, reply_activations
from bench.models.generation import Decoding, generate, joiner, render_prompt
from bench.models.loading import LoadedModel

TASK = TASKS["question"]
SCENARIOS = [
    Scenario("a", "biology", "What do mitochondria do?", "They make proteins."),
    Scenario("b", "algebra", "Solve 2x + 3 = 11 for x.", "x = 4"),
]
PROMPTS = [TASK.messages(s) for s in SCENARIOS]


def _exemplars(per_level: int = 2) -> Any:
    data = load_exemplars(form="question")
    picks = [
        i
        for level in LEVELS
        for i in [j for j, lv in enumerate(data["level"]) if lv == level.value][:per_level]
    ]
    return data.select(picks)


def _fitted(cls: type, lm: LoadedModel, **build: Any) -> Any:
    steerer = cls(TASK, **build)
    steerer.fit(lm, _exemplars())
    return steerer


@pytest.mark.parametrize(
    ("cls", "build", "coefficient"),
    [(DiffMeanSteering, {"layer": 1, "scale": "unit"}, 8.0), (ActAddSteering, {"layer": 0}, 8.0)],
)
def test_coefficient_zero_is_the_unsteered_model(
    tiny_lm: LoadedModel, cls: type, build: dict, coefficient: float
) -> None:
    steerer = _fitted(cls, tiny_lm, **build)
    decoding = Decoding(max_new_tokens=10, greedy=True)
    plain = generate(tiny_lm, PROMPTS, decoding, cue=TASK.cue)
    with steerer.steering(tiny_lm, Level.CREATE, coefficient=0.0):
        zero = generate(tiny_lm, PROMPTS, decoding, cue=TASK.cue)
    assert [g.text for g in zero] == [g.text for g in plain]
    ids = tiny_lm.tokenizer(["Subject: biology. Explain the answer."], return_tensors="pt")
    with torch.no_grad():
        clean = tiny_lm.model(**ids).logits
        with steerer.steering(tiny_lm, Level.CREATE, coefficient=coefficient):
            moved = tiny_lm.model(**ids).logits
    assert not torch.allclose(clean, moved)


def _reply_hidden(lm: LoadedModel, row: dict, layer: int) -> torch.Tensor:
    """By hand: hidden_states[layer + 1] over the reply tokens of one exemplar (not the last
    layer: HF applies the final norm to the last hidden state)."""
    context = render_prompt(lm, TASK.messages(exemplar_scenario(row)), TASK.cue)
    head = lm.tokenizer(context, add_special_tokens=False)["input_ids"]
    tail = lm.tokenizer(joiner(context) + row["text"], add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        out = lm.model(input_ids=torch.tensor([head + tail]), output_hidden_states=True)
    return out.hidden_states[layer + 1][0, len(head) :]


def test_caa_vector_equals_a_hand_computation(tiny_llama: LoadedModel) -> None:
    steerer = _fitted(DiffMeanSteering, tiny_llama, layer=0, scale="unit")
    rows = list(_exemplars())
    hidden = [_reply_hidden(tiny_llama, row, 0) for row in rows]
    for level in LEVELS:
        mine = torch.cat(
            [h for h, r in zip(hidden, rows, strict=True) if r["level"] == level.value]
        )
        rest = torch.cat(
            [h for h, r in zip(hidden, rows, strict=True) if r["level"] != level.value]
        )
        expected = mine.mean(0) - rest.mean(0)
        torch.testing.assert_close(
            steerer.vectors["raw"][level.index], expected, atol=1e-5, rtol=1e-5
        )
        torch.testing.assert_close(steerer.direction(level).norm(), torch.tensor(1.0))


@pytest.mark.parametrize("site_name", ["query", "residual"])
def test_reading_replies_stops_at_the_site_and_reads_what_a_whole_pass_reads(
    tiny_lm: LoadedModel, site_name: str
) -> None:
    site = getattr(tiny_lm.adapter, site_name)(0)
    rows = _exemplars().select(range(3))
    later: list[int] = []
    after = tiny_lm.adapter.residual(-1).module.register_forward_hook(lambda *_: later.append(1))
    try:
        read = reply_activations(tiny_lm, site, TASK, rows)
    finally:
        after.remove()
    assert later == []  # no layer after the site ran
    for row, got in zip(rows, read, strict=True):
        context = render_prompt(tiny_lm, TASK.messages(exemplar_scenario(row)), TASK.cue)
        head = tiny_lm.tokenizer(context, add_special_tokens=False)["input_ids"]
        tail = tiny_lm.tokenizer(joiner(context) + row["text"], add_special_tokens=False)
        with torch.no_grad(), read_site(site) as captured:
            tiny_lm.model(input_ids=torch.tensor([head + tail["input_ids"]]))
        assert torch.equal(got, captured[0][0, len(head) :].float())  # bit for bit


def test_actadd_vector_equals_a_hand_computation(tiny_llama: LoadedModel) -> None:
    steerer = _fitted(ActAddSteering, tiny_llama, layer=0)
    for level in LEVELS:
        positive, negative = pair_ids(tiny_llama, *contrast_pair(level))
        assert len(positive) == len(negative)
        with torch.no_grad():
            out = tiny_llama.model(
                input_ids=torch.tensor([positive, negative]), output_hidden_states=True
            )
        expected = out.hidden_states[1][0] - out.hidden_states[1][1]
        torch.testing.assert_close(steerer.vectors[level.value], expected, atol=1e-5, rtol=1e-5)


def _record(module: Any, monkeypatch: pytest.MonkeyPatch) -> list[tuple[bool | None, torch.Tensor]]:
    """Wrap the module's `add_at_positions`: record which positions each pass adds to."""
    seen: list[tuple[bool | None, torch.Tensor]] = []
    original = module.add_at_positions

    def recording(site: Any, delta: Any) -> Any:
        def wrapped(output: torch.Tensor, phase: Any) -> Any:
            added = delta(output, phase)
            mask = (
                torch.zeros(output.shape[:2], dtype=torch.bool)
                if added is None
                else (added.abs().sum(-1) > 0)
            )
            seen.append((None if phase is None else phase.prompt, mask))
            return added

        return original(site, wrapped)

    monkeypatch.setattr(module, "add_at_positions", recording)
    return seen


def test_caa_steers_the_last_prompt_position_and_every_generated_one(
    tiny_llama: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _record(caa_module, monkeypatch)
    steerer = _fitted(DiffMeanSteering, tiny_llama, layer=1, scale="unit")
    with steerer.steering(tiny_llama, Level.APPLY, coefficient=4.0):  # one prompt pass
        generate(
            tiny_llama, PROMPTS, Decoding(max_new_tokens=4, greedy=True), cue=TASK.cue, reuse=False
        )
    (prompt, mask), *steps = seen
    assert prompt is True and mask[:, -1].all() and not mask[:, :-1].any()
    assert steps and all(p is False and m.all() for p, m in steps)


def test_actadd_steers_the_first_real_prompt_positions_only(
    tiny_llama: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = _record(actadd_module, monkeypatch)
    steerer = _fitted(ActAddSteering, tiny_llama, layer=1)
    with steerer.steering(tiny_llama, Level.APPLY, coefficient=4.0):  # one prompt pass
        generate(
            tiny_llama, PROMPTS, Decoding(max_new_tokens=4, greedy=True), cue=TASK.cue, reuse=False
        )
    (_, mask), *steps = seen
    lengths = [
        len(tiny_llama.tokenizer(render_prompt(tiny_llama, p, TASK.cue))["input_ids"])
        for p in PROMPTS
    ]
    vector = steerer.vectors[Level.APPLY.value]
    nonzero = vector.abs().sum(-1) > 0  # the pair's shared first tokens differ by nothing
    width, span = mask.shape[1], len(vector)
    assert nonzero.any() and not nonzero[0]
    for row, length in enumerate(lengths):  # left padding: the prompt starts at width - length
        expected = torch.zeros(width, dtype=torch.bool)
        expected[width - length : width - length + span] = nonzero
        assert torch.equal(mask[row], expected)
    assert all(p is False and not m.any() for p, m in steps)


def test_caa_vector_equals_the_steering_vectors_library(tiny_llama: LoadedModel) -> None:
    """Independent implementation: steering-vectors records the same decoder-block outputs
    (its own hooks, layer matching and token indexing); DiffMean is taken over them."""
    from steering_vectors import SteeringVectorTrainingSample, extract_activations

    steerer = _fitted(DiffMeanSteering, tiny_llama, layer=1, scale="unit")
    tokenizer = tiny_llama.tokenizer
    by_level: dict[str, list[torch.Tensor]] = {level.value: [] for level in LEVELS}
    for row in _exemplars():
        context = render_prompt(tiny_llama, TASK.messages(exemplar_scenario(row)), TASK.cue)
        head = tokenizer(context, add_special_tokens=False)["input_ids"]
        tail = tokenizer(joiner(context) + row["text"], add_special_tokens=False)["input_ids"]
        full = context + joiner(context) + row["text"]
        assert tokenizer(full)["input_ids"] == head + tail  # the same tokens on both sides
        samples = [
            SteeringVectorTrainingSample(full, full, i, i)
            for i in range(len(head), len(head) + len(tail))
        ]
        positive, _ = extract_activations(
            tiny_llama.model, tokenizer, samples, layers=[1], batch_size=len(samples)
        )
        by_level[row["level"]] += [a.reshape(-1, a.shape[-1]) for a in positive[1]]
    for level in LEVELS:
        mine = torch.cat(by_level[level.value])
        rest = torch.cat([torch.cat(v) for k, v in by_level.items() if k != level.value])
        expected = mine.float().mean(0) - rest.float().mean(0)
        torch.testing.assert_close(
            steerer.vectors["raw"][level.index], expected, atol=1e-5, rtol=1e-5
        )


def test_few_shot_shows_k_target_level_exemplars_as_turns(tiny_llama: LoadedModel) -> None:
    steerer = FewShotPrompting(TASK, k=3)
    exemplars = load_exemplars(form="question")
    steerer.fit(tiny_llama, exemplars)
    scenario = exemplar_scenario(exemplars[0])  # an exemplar's own scenario: never shown to it
    messages = steerer.prompt(scenario, Level.EVALUATE)
    roles = [m["role"] for m in messages]
    assert roles == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    shots = steerer.shots(scenario, Level.EVALUATE)
    assert len(shots) == 3 and all(s["level"] == "Evaluate" for s in shots)
    assert all(s["question"] != scenario.question for s in shots)
    assert all(m["content"].startswith(TASK.cue) for m in messages if m["role"] == "assistant")
    assert messages[-1] == TASK.messages(scenario)[1]
    assert steerer.prompt(scenario, Level.EVALUATE) == messages  # reproducible
    other = Scenario("zz", "physics", "Why is the sky blue?", "Because of the sea.")
    assert steerer.shots(other, Level.EVALUATE) != shots  # each scenario its own shots
