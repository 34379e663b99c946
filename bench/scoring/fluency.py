"""Fluency: perplexity of a text as the assistant's reply in a fixed context, repetition.

Perplexity is measured given context: the text follows the control prompt (same chat template,
the task's cue) under the unsteered model, the same context for every method. Scored on its
own, right after a start token, a short finished question looks disfluent (its first tokens
are hard to predict without the prompt) and a long ramble looks fluent.

Every method's texts for a scenario share one context, so `ContextReader` reads each context
once (its KV cache is kept) and then only the texts' tokens; `perplexities` reads context and
text together and is the reference it is tested against.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

import torch
from transformers import DynamicCache

from bench.models.generation import joiner
from bench.models.loading import LoadedModel
from bench.models.prefill import Rows, assemble, forward, prefill, window_allows
from bench.profiling import section


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


def _context_ids(lm: LoadedModel, context: str) -> list[int]:
    head = lm.tokenizer(context, add_special_tokens=False)["input_ids"]
    if not head and lm.tokenizer.bos_token_id is not None:
        head = [lm.tokenizer.bos_token_id]
    return head


def _text_ids(lm: LoadedModel, context: str, text: str) -> list[int]:
    if not text.strip():
        return []
    return lm.tokenizer(joiner(context) + text, add_special_tokens=False)["input_ids"]


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
            rows.append((_context_ids(lm, context), _text_ids(lm, context, text)))
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


@dataclass
class _Context:
    """One context read: its cache row (real tokens and any padding between them), and the
    log-probabilities of the token after it."""

    cache: DynamicCache
    mask: torch.Tensor
    length: int
    next_logprobs: torch.Tensor
    nbytes: int


class ContextReader:
    """Perplexities of texts in contexts under the unsteered model (no hooks may be active),
    each distinct context read once and its KV cache kept, least recently used dropped past
    `max_cached_bytes`. Same values as `perplexities` (float rounding aside)."""

    def __init__(
        self, lm: LoadedModel, max_cached_bytes: int = 2 << 30, batch_size: int = 32
    ) -> None:
        self.lm = lm
        self.max_cached_bytes = max_cached_bytes
        self.batch_size = batch_size
        self._contexts: OrderedDict[str, _Context] = OrderedDict()
        self._bytes = 0

    def _read(self, contexts: list[str]) -> None:
        """Read the contexts not cached yet (shared prefixes once) and keep them."""
        missing = [c for c in dict.fromkeys(contexts) if c not in self._contexts]
        for start in range(0, len(missing), self.batch_size):
            chunk = missing[start : start + self.batch_size]
            heads = [_context_ids(self.lm, c) for c in chunk]
            if any(not head for head in heads):
                raise ValueError("a context needs at least one token")
            with section("perplexity"):
                ready = prefill(self.lm, heads)
            for row, context in enumerate(chunk):
                first = int(ready.attention_mask[row].argmax())  # drop the row's left padding
                trimmed = DynamicCache(
                    ddp_cache_data=[
                        (
                            layer.keys[row : row + 1, :, first:].clone(),
                            layer.values[row : row + 1, :, first:].clone(),
                        )
                        for layer in ready.cache.layers
                    ]
                )
                nbytes = sum(layer.keys.nbytes + layer.values.nbytes for layer in trimmed.layers)
                self._contexts[context] = _Context(
                    trimmed,
                    ready.attention_mask[row : row + 1, first:],
                    int(ready.lengths[row]),
                    torch.log_softmax(ready.logits[row].float(), dim=-1).cpu(),
                    nbytes,
                )
                self._bytes += nbytes
        for context in contexts:
            self._contexts.move_to_end(context)
        while self._bytes > self.max_cached_bytes and len(self._contexts) > len(set(contexts)):
            _, dropped = self._contexts.popitem(last=False)
            self._bytes -= dropped.nbytes

    @torch.no_grad()
    def perplexities(self, contexts: list[str], texts: list[str]) -> list[float]:
        """exp(mean NLL of each text's tokens) given its context; NaN for an empty text."""
        if len(contexts) != len(texts):
            raise ValueError("need one context per text")
        tails = [_text_ids(self.lm, c, t) for c, t in zip(contexts, texts, strict=True)]
        # Texts of similar length share a pass: a pass is as wide as its longest text.
        scored = sorted((i for i, tail in enumerate(tails) if tail), key=lambda i: len(tails[i]))
        results = [math.nan] * len(texts)
        for start in range(0, len(scored), self.batch_size):
            rows = scored[start : start + self.batch_size]
            self._read([contexts[i] for i in rows])
            read = [self._contexts[contexts[i]] for i in rows]
            width = max(c.mask.shape[1] for c in read) + max(len(tails[i]) for i in rows)
            with section("perplexity"):
                if window_allows(self.lm, width):
                    values = self._batch(read, [tails[i] for i in rows])
                else:  # padding inside a row would move the sliding window
                    picked = [contexts[i] for i in rows], [texts[i] for i in rows]
                    values = perplexities(self.lm, *picked, self.batch_size)
            for i, value in zip(rows, values, strict=True):
                results[i] = value
        return results

    def _batch(self, read: list[_Context], tails: list[list[int]]) -> list[float]:
        device = self.lm.device
        width = max(len(t) for t in tails)
        rows: dict[int, list[int]] = {}
        for i, context in enumerate(read):
            rows.setdefault(id(context), []).append(i)
        first = {id(c): c for c in read}
        parts = [
            Rows(
                first[key].cache,
                first[key].mask,
                torch.zeros(len(targets), dtype=torch.long, device=device),
                torch.tensor(targets, device=device),
            )
            for key, targets in rows.items()
        ]
        past, mask = assemble(parts, len(read), room=width)
        pad = self.lm.tokenizer.pad_token_id or 0
        ids = torch.full((len(tails), width), pad, dtype=torch.long)
        text_mask = torch.zeros((len(tails), width), dtype=torch.long)
        for i, tail in enumerate(tails):
            ids[i, width - len(tail) :] = torch.tensor(tail)
            text_mask[i, width - len(tail) :] = 1
        lengths = torch.tensor([c.length for c in read])
        positions = (lengths[:, None] + text_mask.cumsum(-1) - 1).clamp(min=0)
        attention = torch.cat([mask, text_mask.to(device)], dim=-1)
        logits = forward(self.lm, ids.to(device), attention, positions.to(device), past, keep=width)
        # Only positions that predict a text token (not padding, not the last) are normalized.
        real = text_mask.bool()
        real[:, -1] = False
        predicting = torch.log_softmax(logits[real.to(device)].float(), dim=-1).cpu()
        targets = ids[:, 1:][real[:, :-1]]
        later = -predicting.gather(-1, targets[:, None]).squeeze(-1)
        values, start = [], 0
        for i, tail in enumerate(tails):
            nll = -read[i].next_logprobs[tail[0]] + later[start : start + len(tail) - 1].sum()
            start += len(tail) - 1
            values.append(math.exp(float(nll) / len(tail)))
        return values
