"""Fluency: perplexity under a reference LM, repeated n-grams, distinct-2, and a fluent cut."""

from __future__ import annotations

import math

import torch

from bench.models.loading import LoadedModel


def _words(text: str) -> list[str]:
    return text.lower().split()


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repetition_rate(text: str, n: int = 3) -> float:
    """Share of word n-grams that repeat an earlier n-gram of the same text (0 = none)."""
    grams = _ngrams(_words(text), n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def prompt_copy_rate(text: str, prompt: str, n: int = 4) -> float:
    """Share of the text's word n-grams that also occur in its prompt (1 = parrots the prompt).

    Small models asked for a level often recite the instruction ("...must be at the 'Analyze'
    level of Bloom's taxonomy..."), which a level classifier would reward."""
    grams = _ngrams(_words(text), n)
    if not grams:
        return 0.0
    source = set(_ngrams(_words(prompt), n))
    return sum(gram in source for gram in grams) / len(grams)


def distinct_n(text: str, n: int = 2) -> float:
    """Distinct word n-grams / all word n-grams (1 = no repetition); 0 for texts too short."""
    grams = _ngrams(_words(text), n)
    return len(set(grams)) / len(grams) if grams else 0.0


@torch.inference_mode()
def perplexities(lm: LoadedModel, texts: list[str], batch_size: int = 16) -> list[float]:
    """exp(mean next-token NLL) of each text on its own under `lm` (no hooks should be active).

    The text is scored after the tokenizer's BOS token when it has one, so every token of the
    text is predicted; a text with fewer than one scored token gets NaN.
    """
    tokenizer = lm.tokenizer
    prefix = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    results: list[float] = []
    for start in range(0, len(texts), batch_size):
        ids = [
            prefix + tokenizer(t, add_special_tokens=False)["input_ids"]
            for t in texts[start : start + batch_size]
        ]
        width = max(len(row) for row in ids)
        pad = tokenizer.pad_token_id or 0
        input_ids = torch.tensor([row + [pad] * (width - len(row)) for row in ids])
        mask = torch.tensor([[1] * len(row) + [0] * (width - len(row)) for row in ids])
        logits = lm.model(
            input_ids=input_ids.to(lm.device), attention_mask=mask.to(lm.device)
        ).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1).cpu()
        target = input_ids[:, 1:]
        token_nll = -logprobs.gather(-1, target[..., None]).squeeze(-1)
        scored = mask[:, 1:].float()
        for row in range(len(ids)):
            count = scored[row].sum().item()
            mean = (token_nll[row] * scored[row]).sum().item() / count if count else math.nan
            results.append(math.exp(mean) if count else math.nan)
    return results
