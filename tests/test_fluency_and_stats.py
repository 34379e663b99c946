"""Fluency metrics and bootstrap intervals against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.models.loading import LoadedModel
from bench.report.stats import bootstrap, harmonic_composite
from bench.scoring.fluency import distinct_n, perplexities, prompt_copy_rate, repetition_rate


def test_perplexity_matches_a_hand_computation(tiny_llama: LoadedModel) -> None:
    text = "Next, recall the definition and explain it."
    tokenizer = tiny_llama.tokenizer
    ids = [tokenizer.bos_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
    with torch.no_grad():
        logits = tiny_llama.model(input_ids=torch.tensor([ids])).logits[0]
    nll = [-torch.log_softmax(logits[i], dim=-1)[ids[i + 1]].item() for i in range(len(ids) - 1)]
    expected = math.exp(sum(nll) / len(nll))
    batched = perplexities(tiny_llama, [text, "A shorter one"])  # padding must not matter
    assert batched[0] == pytest.approx(expected, rel=1e-4)
    assert perplexities(tiny_llama, ["A shorter one"])[0] == pytest.approx(batched[1], rel=1e-4)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("the cat sat on the mat", 0.0),  # 4 trigrams, all distinct
        ("a b c a b c", 0.25),  # abc bca cab abc: 1 of 4 repeats
        ("go go go go go", 2 / 3),  # three identical trigrams
        ("too short", 0.0),
    ],
)
def test_repetition_rate_on_known_strings(text: str, rate: float) -> None:
    assert repetition_rate(text) == pytest.approx(rate)


def test_distinct_2() -> None:
    assert distinct_n("a b a b", 2) == pytest.approx(2 / 3)
    assert distinct_n("one two three", 2) == 1.0
    assert distinct_n("one", 2) == 0.0


def test_bootstrap_interval_covers_the_mean() -> None:
    values = np.random.default_rng(1).normal(3.0, 1.0, size=200)
    estimate = bootstrap(values)
    assert estimate.low < values.mean() < estimate.high
    assert estimate.value == pytest.approx(values.mean())
    assert estimate.high - estimate.low < 0.5  # about 4 standard errors (0.07 each)
    assert estimate.low < 3.0 < estimate.high


def test_bootstrap_of_a_constant_has_no_width() -> None:
    estimate = bootstrap([1.0] * 10)
    assert estimate.low == estimate.high == estimate.value == 1.0


def test_harmonic_composite_is_zero_if_any_criterion_is() -> None:
    criteria = np.array([[1, 1, 0], [1, 1, 1], [0.5, 1, 1], [0, 0.9, 0.9]])
    expected = [0.0, 1.0, 3 / (2 + 1 + 1), 0.0]
    assert harmonic_composite(criteria) == pytest.approx(expected)


def test_prompt_copy_rate() -> None:
    prompt = "The thing you ask the student to do next must be at the Analyze level"
    assert prompt_copy_rate("the thing you ask the student to do", prompt) == 1.0
    assert prompt_copy_rate("Which of the two causes mattered more here?", prompt) == 0.0
    # 5 word 4-grams; only "ask the student to" occurs in the prompt
    copied = prompt_copy_rate("ask the student to write three more lines", prompt)
    assert copied == pytest.approx(1 / 5)
