"""Batched generation with left padding and a KV cache, greedy or seeded sampling.

Each row samples from its own `torch.Generator`, seeded per row, so a row's text depends on
its seed and prompt, not on which other rows share its batch. The loop marks the prefill
pass and each decode step with `bench.hooks.phase`, so steering hooks can tell prompt
positions from generated ones. A task's cue opens the assistant's turn, and its stop rule
ends a row as soon as the text reaches it (the rest of the batch goes on).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache

import torch
from transformers import DynamicCache

from bench.data.tasks import Message, StopRule
from bench.hooks import Phase, phase
from bench.models.loading import LoadedModel


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


@cache
def _cache_argument(model_class: type) -> str:
    """The forward() keyword for the KV cache: `cache` in newer transformers, else the old name."""
    return (
        "cache"
        if "cache" in inspect.signature(model_class.forward).parameters
        else ("past_key_values")
    )


def _stop_ids(lm: LoadedModel) -> list[int]:
    ids = lm.model.generation_config.eos_token_id or lm.model.config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if lm.tokenizer.eos_token_id is not None:
        ids.append(lm.tokenizer.eos_token_id)
    return sorted(set(ids))


def _sample(
    logits: torch.Tensor, decoding: Decoding, generators: list[torch.Generator]
) -> torch.Tensor:
    if decoding.greedy:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits / decoding.temperature, dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)
    outside = sorted_probs.cumsum(dim=-1) - sorted_probs > decoding.top_p
    sorted_probs = sorted_probs.masked_fill(outside, 0.0)
    picks = [
        torch.multinomial(row, 1, generator=generator)
        for row, generator in zip(sorted_probs, generators, strict=True)
    ]
    return order.gather(-1, torch.stack(picks)).squeeze(-1)


@torch.no_grad()
def generate(
    lm: LoadedModel,
    prompts: list[list[Message]],
    decoding: Decoding,
    seeds: list[int] | None = None,
    cue: str = "",
    stop: StopRule | None = None,
) -> list[Generation]:
    """Generate one continuation per chat prompt, all in one batch.

    Runs under `no_grad`, not `inference_mode`, so a steering hook may turn gradients on
    inside itself (e.g. gradient steps on an SAE code).
    """
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError("need one seed per prompt")
    device = lm.device
    texts = [render_prompt(lm, messages, cue) for messages in prompts]
    encoded = lm.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    input_ids = encoded["input_ids"].to(device)
    attention = encoded["attention_mask"].to(device)
    positions = (attention.cumsum(dim=-1) - 1).clamp(min=0)
    generators = [torch.Generator().manual_seed(seed) for seed in (seeds or [0] * len(prompts))]
    end_ids = torch.tensor(_stop_ids(lm), device=device)
    pad = lm.tokenizer.pad_token_id
    cache_kw = {_cache_argument(type(lm.model)): DynamicCache()}
    batch = input_ids.shape[0]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    new_tokens: list[torch.Tensor] = []

    with phase(Phase(prompt=True, step=0, attention_mask=attention)):
        out = lm.model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            use_cache=True,
            **cache_kw,
        )
    for step in range(1, decoding.max_new_tokens + 1):
        token = _sample(out.logits[:, -1].float().cpu(), decoding, generators).to(device)
        token = torch.where(done, torch.full_like(token, pad), token)
        hit_stop = torch.isin(token, end_ids) & ~done
        finished |= hit_stop
        new_tokens.append(torch.where(hit_stop, torch.full_like(token, pad), token))
        done |= hit_stop
        if stop is not None:
            reached = _reached_stop(lm, new_tokens, done, pad, stop)
            finished |= reached
            done |= reached
        if bool(done.all()) or step == decoding.max_new_tokens:
            break
        attention = torch.cat([attention, (~done).long()[:, None]], dim=-1)
        positions = positions[:, -1:] + 1
        with phase(Phase(prompt=False, step=step)):
            out = lm.model(
                input_ids=token[:, None],
                attention_mask=attention,
                position_ids=positions,
                use_cache=True,
                **cache_kw,
            )

    generated = torch.stack(new_tokens, dim=1).cpu()
    results = []
    for row in range(batch):
        ids = [t for t in generated[row].tolist() if t != pad]
        text = lm.tokenizer.decode(ids, skip_special_tokens=True)
        if stop is not None:
            text = stop.cut(text)[0]
        results.append(Generation(text.strip(), len(ids), bool(finished[row])))
    return results


def _reached_stop(
    lm: LoadedModel, new_tokens: list[torch.Tensor], done: torch.Tensor, pad: int, stop: StopRule
) -> torch.Tensor:
    """Rows still running whose text so far has reached the stop rule."""
    reached = torch.zeros_like(done)
    so_far = torch.stack(new_tokens, dim=1).cpu()
    for row in (~done).nonzero().flatten().tolist():
        ids = [t for t in so_far[row].tolist() if t != pad]
        reached[row] = stop.cut(lm.tokenizer.decode(ids, skip_special_tokens=True))[1]
    return reached
