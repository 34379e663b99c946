"""Fluency metrics against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from bench.models.generation import joiner
from bench.models.loading import LoadedModel
from bench.scoring.fluency import distinct_n, perplexities, repetition_rate


def test_perplexity_given_context_matches_a_hand_computation(tiny_llama: LoadedModel) -> None:
    context, text = (
        "<|im_start|>user\nSubject: biology<|im_end|>\n<|im_start|>assistant\n",
        "Next, recall it.",
    )
    tokenizer = tiny_llama.tokenizer
    head = tokenizer(context, add_special_tokens=False)["input_ids"]
    tail = tokenizer(joiner(context) + text, add_special_tokens=False)["input_ids"]
    ids = head + tail
    with torch.no_grad():
        logits = tiny_llama.model(input_ids=torch.tensor([ids])).logits[0]
    nll = [
        -torch.log_softmax(logits[i - 1], dim=-1)[ids[i]].item() for i in range(len(head), len(ids))
    ]
    expected = math.exp(sum(nll) / len(nll))
    # A longer second row forces padding: the first row's value must not change.
    batched = perplexities(tiny_llama, [context, context + " more"], [text, "A longer text here."])
    assert batched[0] == pytest.approx(expected, rel=1e-4)
    alone = perplexities(tiny_llama, [context], [text])
    assert alone[0] == pytest.approx(expected, rel=1e-4)


def test_perplexity_of_an_empty_text_is_nan(tiny_llama: LoadedModel) -> None:
    assert math.isnan(perplexities(tiny_llama, ["Question:"], [""])[0])


def test_joiner_puts_a_space_after_a_cue_only() -> None:
    assert joiner("Follow-up question:") == " "
    assert joiner("<|im_start|>assistant\n") == ""


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
