"""Batched generation with left padding and a KV cache, greedy or seeded sampling.

Each row samples from its own `torch.Generator`, seeded per row, so a row's text depends on
its seed and prompt, not on which other rows share its batch. The loop marks the prefill
pass and each decode step with `bench.hooks.phase`, so steering hooks can tell prompt
positions from generated ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

from bench.data.prompts import Message
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
    """True when the model emitted an end token before max_new_tokens."""


def render_prompt(lm: LoadedModel, messages: list[Message]) -> str:
    """The chat template applied to `messages`, or a plain transcript if there is none."""
    tokenizer = lm.tokenizer
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join([*turns, "Assistant:"])


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


@torch.inference_mode()
def generate(
    lm: LoadedModel,
    prompts: list[list[Message]],
    decoding: Decoding,
    seeds: list[int] | None = None,
) -> list[Generation]:
    """Generate one continuation per chat prompt, all in one batch."""
    if seeds is not None and len(seeds) != len(prompts):
        raise ValueError("need one seed per prompt")
    device = lm.device
    texts = [render_prompt(lm, messages) for messages in prompts]
    encoded = lm.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    input_ids = encoded["input_ids"].to(device)
    attention = encoded["attention_mask"].to(device)
    positions = (attention.cumsum(dim=-1) - 1).clamp(min=0)
    generators = [torch.Generator().manual_seed(seed) for seed in (seeds or [0] * len(prompts))]
    stop = torch.tensor(_stop_ids(lm), device=device)
    pad = lm.tokenizer.pad_token_id
    cache = DynamicCache()
    batch = input_ids.shape[0]
    done = torch.zeros(batch, dtype=torch.bool, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    new_tokens: list[torch.Tensor] = []

    with phase(Phase(prompt=True, step=0, attention_mask=attention)):
        out = lm.model(
            input_ids=input_ids,
            attention_mask=attention,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
        )
    for step in range(1, decoding.max_new_tokens + 1):
        token = _sample(out.logits[:, -1].float().cpu(), decoding, generators).to(device)
        token = torch.where(done, torch.full_like(token, pad), token)
        hit_stop = torch.isin(token, stop) & ~done
        finished |= hit_stop
        new_tokens.append(torch.where(hit_stop, torch.full_like(token, pad), token))
        done |= hit_stop
        if bool(done.all()) or step == decoding.max_new_tokens:
            break
        attention = torch.cat([attention, (~done).long()[:, None]], dim=-1)
        positions = positions[:, -1:] + 1
        with phase(Phase(prompt=False, step=step)):
            out = lm.model(
                input_ids=token[:, None],
                attention_mask=attention,
                position_ids=positions,
                past_key_values=cache,
                use_cache=True,
            )

    generated = torch.stack(new_tokens, dim=1).cpu()
    results = []
    for row in range(batch):
        ids = [t for t in generated[row].tolist() if t != pad]
        text = lm.tokenizer.decode(ids, skip_special_tokens=True).strip()
        results.append(Generation(text, len(ids), bool(finished[row])))
    return results
