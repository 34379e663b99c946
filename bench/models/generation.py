"""Batched generation with a KV cache, greedy or seeded sampling.

Each row samples from its own `torch.Generator`, seeded per row, so a row's text depends on
its seed and prompt, not on which other rows share its batch. Prompts are prefilled once per
shared prefix (`bench.models.prefill`), and rows that finish leave the batch. The loop marks
every prompt pass and each decode step with `bench.hooks.phase`, so steering hooks can tell
prompt positions from generated ones and which caller row each batch row is. A task's cue
opens the assistant's turn, and its stop rule ends a row as soon as the text reaches it.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import torch

from bench.data.tasks import Message, StopRule
from bench.hooks import Phase, phase
from bench.models.loading import LoadedModel
from bench.models.prefill import Reach, forward, prefill
from bench.profiling import section


@dataclass(frozen=True)
class Decoding:
    """Decoding settings shared by every method (the protocol's fairness rule)."""

    max_new_tokens: int = 96
    """How many tokens to generate at most."""
    temperature: float = 0.7
    """Sampling temperature (ignored when greedy)."""
    top_p: float = 0.9
    """Nucleus sampling mass (ignored when greedy)."""
    greedy: bool = False
    """Take the most likely token instead of sampling."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive (use greedy for argmax decoding)")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


@dataclass(frozen=True)
class Generation:
    """One generated text and how it ended."""

    text: str
    n_tokens: int
    finished: bool
    """True when the text ended (end token or stop rule) before max_new_tokens."""


def render_prompt(lm: LoadedModel, messages: list[Message], cue: str = "") -> str:
    """The chat template applied to `messages` (or a plain transcript if there is none), with
    the assistant's turn opened and begun by `cue`."""
    tokenizer = lm.tokenizer
    if tokenizer.chat_template:
        opened = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    else:
        turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        opened = "\n\n".join([*turns, "Assistant: "])
    return opened + cue


def joiner(context: str) -> str:
    """What goes between a context and its continuation when a text is read teacher-forced:
    a space after a cue that ends in a word or punctuation (generation put it there), nothing
    after a line break or space."""
    return "" if not context or context[-1].isspace() else " "


def _stop_ids(lm: LoadedModel) -> list[int]:
    ids = lm.model.generation_config.eos_token_id or lm.model.config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if lm.tokenizer.eos_token_id is not None:
        ids.append(lm.tokenizer.eos_token_id)
    return sorted(set(ids))


COMPACT_AT = 0.75
"""Finished rows stay in the batch (their outputs unread) until the running ones are at most
this share of it: dropping rows copies the whole cache, so it is not done every step."""
NUCLEUS_WINDOW = 1024
"""Top-p sampling looks at the likeliest this many tokens first (a partial sort); a row whose
nucleus is wider is sampled from its fully sorted distribution."""


def _sample(
    logits: torch.Tensor, decoding: Decoding, generators: list[torch.Generator]
) -> torch.Tensor:
    """One token per row: argmax, or top-p sampling from each row's own generator.

    The draw is `torch.multinomial` on the row's probabilities sorted in descending order,
    tokens outside the nucleus zeroed. Multinomial takes one sample as the argmax of p / q
    with q ~ Exp(1), one draw per vocabulary entry; when the nucleus lies within the top
    `NUCLEUS_WINDOW`, the same draws are made and only that window is sorted (a full sort of
    the vocabulary was half of a decode step on a CPU). `_sample_sorted` is the plain way."""
    if decoding.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / decoding.temperature, dim=-1)
    window = min(NUCLEUS_WINDOW, probs.shape[-1])
    top, order = probs.topk(window, dim=-1)
    outside = top.cumsum(dim=-1) - top > decoding.top_p
    picks = []
    for row, generator in enumerate(generators):
        if window < probs.shape[-1] and not outside[row, -1]:  # a wide nucleus
            picks.append(_sample_sorted(probs[row], decoding.top_p, generator))
            continue
        draws = torch.empty(probs.shape[-1]).exponential_(1, generator=generator)
        kept = top[row].masked_fill(outside[row], 0.0)
        picks.append(int(order[row, (kept / draws[:window]).argmax()]))
    return torch.tensor(picks)


def _sample_sorted(probs: torch.Tensor, top_p: float, generator: torch.Generator) -> int:
    """Top-p sampling of one row [vocab] from its fully sorted probabilities."""
    ranked, order = probs.sort(descending=True)
    ranked = ranked.masked_fill(ranked.cumsum(dim=-1) - ranked > top_p, 0.0)
    return int(order[torch.multinomial(ranked, 1, generator=generator)])


def prompt_ids(lm: LoadedModel, prompts: list[list[Message]], cue: str = "") -> list[list[int]]:
    """Each chat prompt rendered (assistant turn opened, cue added) as token ids."""
    texts = [render_prompt(lm, messages, cue) for messages in prompts]
    return lm.tokenizer(texts, add_special_tokens=False)["input_ids"]


@torch.no_grad()
def generate(
    lm: LoadedModel,
    prompts: list[list[Message]],
    decoding: Decoding,
    seeds: list[int] | None = None,
    cue: str = "",
    stop: StopRule | None = None,
    groups: Sequence[Hashable] | None = None,
    reach: Reach = "none",
    reuse: bool = True,
) -> list[Generation]:
    """Generate one continuation per chat prompt, all in one batch.

    Prompts are read once per shared prefix (`bench.models.prefill`; rows of different
    `groups` share what `reach` allows; `reuse=False` reads every row whole), and rows leave
    the batch as they finish. Runs under `no_grad`, not `inference_mode`, so a steering hook
    may turn gradients on inside itself (e.g. gradient steps on an SAE code).
    """
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError("need one seed per prompt")
    device = lm.device
    ready = prefill(
        lm,
        prompt_ids(lm, prompts, cue),
        groups,
        reach,
        reuse=reuse,
        headroom=decoding.max_new_tokens,
    )
    generators = [torch.Generator().manual_seed(seed) for seed in (seeds or [0] * len(prompts))]
    end_ids = set(_stop_ids(lm))
    tokens: list[list[int]] = [[] for _ in prompts]
    finished = [False] * len(prompts)
    held = list(range(len(prompts)))  # the caller rows in the cache, in its order
    running = set(held)
    past, attention, logits = ready.cache, ready.attention_mask, ready.logits
    for step in range(1, decoding.max_new_tokens + 1):
        with section("sample"):
            live = [k for k, row in enumerate(held) if row in running]
            picked = torch.full((len(held),), lm.tokenizer.pad_token_id or 0, dtype=torch.long)
            picked[live] = _sample(
                logits[live].float().cpu(), decoding, [generators[held[k]] for k in live]
            )
            for k in live:
                row, token = held[k], int(picked[k])
                if token in end_ids:
                    finished[row] = True
                    running.discard(row)
                    continue
                tokens[row].append(token)
                if stop is not None and _reached_stop(lm, tokens[row], stop):
                    finished[row] = True
                    running.discard(row)
        if not running or step == decoding.max_new_tokens:
            break
        if len(running) <= COMPACT_AT * len(held):  # finished rows leave the batch
            keep = [k for k, row in enumerate(held) if row in running]
            index = torch.tensor(keep, device=device)
            past.batch_select_indices(index)
            attention = attention.index_select(0, index)
            picked = picked[keep]
            held = [held[k] for k in keep]
        attention = torch.cat([attention, attention.new_ones((len(held), 1))], dim=-1)
        rows = torch.tensor(held, device=device)
        positions = (ready.lengths.index_select(0, rows) + step - 1)[:, None]
        with section("decode"), phase(Phase(prompt=False, step=step, rows=rows)):
            logits = forward(lm, picked.to(device)[:, None], attention, positions, past)[:, -1]
    pad = lm.tokenizer.pad_token_id
    results = []
    for row, ids in enumerate(tokens):
        kept = [t for t in ids if t != pad]
        text = lm.tokenizer.decode(kept, skip_special_tokens=True)
        if stop is not None:
            text = stop.cut(text)[0]
        results.append(Generation(text.strip(), len(kept), finished[row]))
    return results


def _reached_stop(lm: LoadedModel, ids: list[int], stop: StopRule) -> bool:
    """Whether a row's text so far has reached the stop rule."""
    pad = lm.tokenizer.pad_token_id
    return stop.cut(lm.tokenizer.decode([t for t in ids if t != pad], skip_special_tokens=True))[1]
