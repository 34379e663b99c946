"""Fluency: perplexity of a text as the assistant's reply in a fixed context, repetition.

Perplexity is measured given context: the text follows the control prompt (same chat template,
the task's cue) under the unsteered model, the same context for every method. Scored on its
own, right after a start token, a short finished question looks disfluent (its first tokens
are hard to predict without the prompt) and a long ramble looks fluent.
"""

from __future__ import annotations

import math

import torch

from bench.models.generation import joiner
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


def distinct_n(text: str, n: int = 2) -> float:
    """Distinct word n-grams / all word n-grams (1 = no repetition); 0 for texts too short."""
    grams = _ngrams(_words(text), n)
    return len(set(grams)) / len(grams) if grams else 0.0


@torch.no_grad()
def perplexities(
    lm: LoadedModel, contexts: list[str], texts: list[str], batch_size: int = 16
) -> list[float]:
    """exp(mean NLL of the text's tokens) given its context, under `lm` (no hooks active).

    Context and text are tokenized separately and joined, so every text token is scored
    exactly once; a text with no tokens gets NaN.
    """
    if len(contexts) != len(texts):
        raise ValueError("need one context per text")
    tokenizer = lm.tokenizer
    pad = tokenizer.pad_token_id or 0
    results: list[float] = []
    for start in range(0, len(texts), batch_size):
        rows = []
        for context, text in zip(
            contexts[start : start + batch_size], texts[start : start + batch_size], strict=True
        ):
            head = tokenizer(context, add_special_tokens=False)["input_ids"]
            tail = tokenizer(joiner(context) + text, add_special_tokens=False)["input_ids"]
            if not head and tokenizer.bos_token_id is not None:
                head = [tokenizer.bos_token_id]
            rows.append((head, tail if text.strip() else []))
        width = max(len(h) + len(t) for h, t in rows)
        # Left padding, so every row's last position lines up (as in generation).
        ids = torch.full((len(rows), width), pad)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        scored = torch.zeros((len(rows), width), dtype=torch.bool)
        for i, (head, tail) in enumerate(rows):
            seq = head + tail
            ids[i, width - len(seq) :] = torch.tensor(seq)
            mask[i, width - len(seq) :] = 1
            if tail:
                scored[i, width - len(tail) :] = True
        positions = (mask.cumsum(dim=-1) - 1).clamp(min=0)
        logits = lm.model(
            input_ids=ids.to(lm.device),
            attention_mask=mask.to(lm.device),
            position_ids=positions.to(lm.device),
        ).logits
        logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1).cpu()
        token_nll = -logprobs.gather(-1, ids[:, 1:, None]).squeeze(-1)
        target = scored[:, 1:]
        for i in range(len(rows)):
            count = int(target[i].sum())
            mean = float(token_nll[i][target[i]].sum()) / count if count else math.nan
            results.append(math.exp(mean) if count else math.nan)
    return results
