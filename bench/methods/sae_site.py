"""What both SAE methods run: an SAE at an attention-query site, each level's mean code over
the exemplar texts (its prototype), the steering hook that edits the query at the steered
positions, and the attention shift the edit causes (the seed paper's mechanism).

A method subclasses `SAESiteSteerer` and says how it edits the query (`edit`) and what it
learned (`artifacts`). Positions steered: `generated` (every generated token, and the last
prompt position, which produces the first one) or `all` (the prompt too).
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import datasets
import torch

from bench.data.levels import LEVELS, Level
from bench.data.roles import dataset_sha256
from bench.data.tasks import Message
from bench.errors import ConfigError
from bench.hooks import current_phase, prompt_ends, replace_site
from bench.methods.activations import (
    cached_vectors,
    level_indices,
    pass_levels,
    reply_activations,
)
from bench.methods.base import HParam, Steerer, source_sha256
from bench.models.attention import attention_weights
from bench.models.generation import joiner, render_prompt
from bench.models.loading import LoadedModel
from bench.models.prefill import (
    Reach,
    Rows,
    assemble,
    cache_argument,
    prefill,
    window_allows,
)
from bench.sae.base import SparseAutoencoder, weights_sha256
from bench.sae.registry import load_sae


class SAESiteSteerer(Steerer):
    """A steerer that edits the attention query through a query-site SAE."""

    POSITIONS: ClassVar[HParam] = HParam(
        "positions",
        "str",
        "generated",
        "which positions are steered",
        choices=("generated", "all"),
    )

    def __init__(self, task: Any, **build: Any) -> None:
        super().__init__(task, **build)
        self.sae_dir = build["sae"]
        self.sae: SparseAutoencoder = load_sae(self.sae_dir)
        if self.sae.config.site != "query":
            raise ConfigError(
                f"{self.sae_dir}: an SAE of the {self.sae.config.site} site, not query"
            )
        self.layer = self.sae.config.hook_layer
        self.prototypes: torch.Tensor | None = None

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        """Per level, the mean code over the exemplar texts' tokens (teacher-forced)."""
        expected = self.sae.config.metadata.get("store", {}).get("weights_sha256")
        if expected and expected != lm.weights_sha256:
            raise ConfigError(f"{self.sae_dir} was trained on other weights than {lm.alias}'s")
        self.sae = self.sae.to(lm.device)

        def compute() -> dict[str, torch.Tensor]:
            sums = torch.zeros(len(LEVELS), self.sae.config.d_sae, device=lm.device)
            counts = torch.zeros(len(LEVELS), device=lm.device)
            replies = reply_activations(lm, lm.adapter.query(self.layer), self.task, exemplars)
            with torch.no_grad():
                for activations, level in zip(replies, exemplars["level"], strict=True):
                    index = Level(level).index
                    sums[index] += self.sae.encode(activations).sum(0)
                    counts[index] += len(activations)
            return {"prototypes": sums / counts.clamp(min=1)[:, None]}

        parts = {  # the prototypes: computed once per SAE, model, task and exemplars
            "method": "sae prototypes",
            "code": source_sha256(SAESiteSteerer),
            "sae_code": hashlib.sha256(
                Path(inspect.getfile(type(self.sae))).read_bytes()
            ).hexdigest()[:16],
            "sae_weights": weights_sha256(self.sae_dir),
            "weights": lm.weights_sha256,
            "layer": self.layer,
            "task": self.task.fingerprint,
            "exemplars": dataset_sha256(exemplars),
        }
        self.prototypes = cached_vectors(parts, compute)["prototypes"].to(lm.device)

    def learned(self) -> tuple[str, torch.Tensor]:
        """(name, tensor) of what `fit` learned beyond the SAE: part of the fingerprint."""
        raise NotImplementedError

    def artifacts(self) -> dict[str, str]:
        name, tensor = self.learned()
        content = tensor.detach().cpu().float().numpy().tobytes()
        return {
            "sae_weights": weights_sha256(self.sae_dir),
            name: hashlib.sha256(content).hexdigest(),
        }

    def edit(
        self,
        q: torch.Tensor,
        steer: torch.Tensor,
        levels: torch.Tensor,
        **settings: Any,
    ) -> torch.Tensor:
        """The query [b, s, d] with the positions in `steer` [b, s] (bool) edited toward each
        row's level (`levels`: [b] level indices)."""
        raise NotImplementedError

    def prompt_reach(self, **settings: Any) -> Reach:
        return "all" if settings["positions"] == "all" else "last"

    @torch.no_grad()
    def diagnostics(
        self,
        lm: LoadedModel,
        levels: list[Level],
        prompts: list[list[Message]],
        texts: list[str],
        **settings: Any,
    ) -> list[dict[str, float]]:
        """Attention shift, the paper's mechanism: each text re-read teacher-forced with and
        without the edit (eager attention, up to the steered layer only); at that layer, the
        mean KL from the clean to the steered attention distribution over heads and steered
        positions, and the mean change of its entropy. With `positions: generated` the
        prompts (all but their last token, which is steered) are read once for both passes,
        shared prefixes once for the batch; with `all`, each text is read whole."""
        heads, tails = [], []
        for messages, text in zip(prompts, texts, strict=True):
            context = render_prompt(lm, messages, self.task.cue)
            heads.append(lm.tokenizer(context, add_special_tokens=False)["input_ids"])
            tails.append(
                lm.tokenizer(joiner(context) + text, add_special_tokens=False)["input_ids"]
            )
        if settings["positions"] == "all" or min(map(len, heads)) < 2:
            return [
                self._shift_whole(lm, level, head, tail, settings)
                for level, head, tail in zip(levels, heads, tails, strict=True)
            ]
        return self._shift_cached(lm, levels, heads, tails, settings)

    def _shift_whole(
        self,
        lm: LoadedModel,
        level: Level,
        head: list[int],
        tail: list[int],
        settings: dict,
    ) -> dict[str, float]:
        """One text read whole, with and without the edit."""
        site = lm.adapter.query(self.layer)
        ids = torch.tensor([head + tail], device=lm.device)
        steer = torch.zeros(ids.shape, dtype=torch.bool, device=lm.device)
        steer[0, 0 if settings["positions"] == "all" else len(head) - 1 :] = True
        clean = attention_weights(lm.model, site, ids)
        index = level_indices(level, lm.device)
        with replace_site(site, lambda q: self.edit(q, steer, index, **settings)):
            steered = attention_weights(lm.model, site, ids)
        return _attention_shift(clean[0][:, steer[0]], steered[0][:, steer[0]])

    def _shift_cached(
        self,
        lm: LoadedModel,
        levels: list[Level],
        heads: list,
        tails: list,
        settings: dict,
    ) -> list[dict[str, float]]:
        """Every text at once: its prompt but the last token read once (into a cache shared by
        a clean and a steered copy of the row), then the rest in one pass for both copies."""
        device, n = lm.device, len(heads)
        ready = prefill(lm, [head[:-1] for head in heads])
        rest = [[head[-1], *tail] for head, tail in zip(heads, tails, strict=True)]
        width = max(map(len, rest))
        if not window_allows(lm, ready.attention_mask.shape[1] + width):
            return [  # padding inside a row would move the sliding window
                self._shift_whole(lm, level, head, tail, settings)
                for level, head, tail in zip(levels, heads, tails, strict=True)
            ]
        ids = torch.zeros((2 * n, width), dtype=torch.long)
        mask = torch.zeros((2 * n, width), dtype=torch.long)
        for i, row in enumerate(rest * 2):
            ids[i, width - len(row) :] = torch.tensor(row)
            mask[i, width - len(row) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        both = torch.arange(n, device=device).repeat(2)
        rows = Rows(ready.cache, ready.attention_mask, both, torch.arange(2 * n, device=device))
        past, prefix_mask = assemble([rows], 2 * n, room=width)
        positions = (ready.lengths[both][:, None] + mask.cumsum(-1) - 1).clamp(min=0)
        steer = mask.bool()
        steer[:n] = False  # the first copy of each row stays clean
        index = level_indices(levels, device).repeat(2)
        site = lm.adapter.query(self.layer)
        with replace_site(site, lambda q: self.edit(q, steer, index, **settings)):
            weights = attention_weights(
                lm.model,
                site,
                ids,
                attention_mask=torch.cat([prefix_mask, mask], dim=-1),
                position_ids=positions,
                **cache_argument(lm, past),
            )
        real = mask.bool()
        return [
            _attention_shift(weights[i][:, real[i]], weights[n + i][:, real[i]]) for i in range(n)
        ]

    @contextmanager
    def steering(
        self, lm: LoadedModel, levels: Level | Sequence[Level], **settings: Any
    ) -> Iterator[None]:
        if self.prototypes is None:
            raise RuntimeError("fit() first")
        indices = level_indices(levels, lm.device)

        def hook_edit(q: torch.Tensor) -> torch.Tensor:
            phase = current_phase()
            batch = q.shape[0]
            steer = torch.zeros(q.shape[:2], dtype=torch.bool, device=q.device)
            if phase is None or not phase.prompt or settings["positions"] == "all":
                steer[:] = True
            else:  # the last prompt position produces the first token
                steer[:, -1] = prompt_ends(phase, batch, q.device)
            if phase is not None and phase.prompt and phase.attention_mask is not None:
                steer &= phase.attention_mask.bool().to(q.device)
            return self.edit(q, steer, pass_levels(indices, phase, batch), **settings)

        with replace_site(lm.adapter.query(self.layer), hook_edit):
            yield


def _attention_shift(clean: torch.Tensor, steered: torch.Tensor) -> dict[str, float]:
    """Mean KL from the clean to the steered attention distributions [heads, positions, keys]
    and the mean change of their entropy (keys of zero weight on both sides add nothing)."""
    p = clean.float().clamp(min=1e-12)
    q = steered.float().clamp(min=1e-12)
    kl = (p * (p.log() - q.log())).sum(-1)
    entropy = -(q * q.log()).sum(-1) + (p * p.log()).sum(-1)
    return {
        "attention_kl": float(kl.mean()),
        "attention_entropy_change": float(entropy.mean()),
    }
