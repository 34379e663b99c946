"""ActAdd (Turner et al. 2023, "Activation Addition").

Per target level, one contrast pair of short prompts: an instruction asking for the target
level's kind of thinking, and a neutral one. The steering vector is the difference of their
residual activations at layer l, position by position (the shorter prompt padded with space
tokens to the same length, as in the paper), added with coefficient c to the first positions
of the prompt during the prompt's forward pass; generated tokens see it through the cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import datasets
import torch

from bench.data.instructions import level_instruction
from bench.data.levels import LEVELS, Level
from bench.hooks import Phase, prompt_index, read_site
from bench.methods.activations import (
    add_at_positions,
    cached_vectors,
    level_indices,
    pass_levels,
    tensors_sha256,
)
from bench.methods.base import HParam, Steerer, source_sha256
from bench.models.loading import LoadedModel
from bench.models.prefill import Reach

NEUTRAL = "Ask them a question."


def contrast_pair(level: Level) -> tuple[str, str]:
    """(the level's prompt, the neutral prompt)."""
    return level_instruction(level, "described"), NEUTRAL


def pair_ids(lm: LoadedModel, positive: str, negative: str) -> tuple[list[int], list[int]]:
    """Token ids of both prompts (after the tokenizer's start token, if it has one), the
    shorter padded with space tokens to the longer's length."""
    tokenizer = lm.tokenizer
    start = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    ids = [
        start + tokenizer(text, add_special_tokens=False)["input_ids"]
        for text in (positive, negative)
    ]
    space = tokenizer(" ", add_special_tokens=False)["input_ids"][-1]
    width = max(len(row) for row in ids)
    padded = [row + [space] * (width - len(row)) for row in ids]
    return padded[0], padded[1]


class ActAddSteering(Steerer):
    """Add the contrast pair's activation difference at the front of the prompt."""

    name: ClassVar[str] = "actadd"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam("layer", "layer", 6, "residual layer the difference is read and added at", "build"),
        HParam("coefficient", "float", 4.0, "multiple of the difference that is added"),
    )

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        """Exemplars are not used: ActAdd learns from its contrast pairs alone."""
        layer = self.build_hparams["layer"]
        site = lm.adapter.residual(layer)

        @torch.no_grad()
        def compute() -> dict[str, torch.Tensor]:
            vectors = {}
            for level in LEVELS:
                positive, negative = pair_ids(lm, *contrast_pair(level))
                with read_site(site) as captured:
                    lm.model(input_ids=torch.tensor([positive, negative], device=lm.device))
                vectors[level.value] = (captured[0][0] - captured[0][1]).float()
            return vectors

        parts = {
            "method": self.name,
            "code": source_sha256(type(self)),
            "weights": lm.weights_sha256,
            "layer": layer,
            "pairs": [contrast_pair(level) for level in LEVELS],
        }
        self.vectors = cached_vectors(parts, compute)

    def artifacts(self) -> dict[str, str]:
        return {"vectors": tensors_sha256(self.vectors)}

    def prompt_reach(self, **settings: Any) -> Reach:
        return "all"

    @contextmanager
    def steering(
        self, lm: LoadedModel, levels: Level | Sequence[Level], **settings: Any
    ) -> Iterator[None]:
        width = max(len(v) for v in self.vectors.values())
        table = torch.zeros(len(LEVELS), width, self.vectors[LEVELS[0].value].shape[-1])
        for level in LEVELS:
            table[level.index, : len(self.vectors[level.value])] = self.vectors[level.value]
        table = (settings["coefficient"] * table).to(lm.device)
        indices = level_indices(levels, lm.device)

        def delta(output: torch.Tensor, phase: Phase | None) -> torch.Tensor | None:
            if settings["coefficient"] == 0 or (phase is not None and not phase.prompt):
                return None
            position = prompt_index(phase, output.shape[:2], output.device)
            rows = pass_levels(indices, phase, output.shape[0])[:, None].expand_as(position)
            inside = (position >= 0) & (position < width)
            added = torch.zeros_like(output)
            added[inside] = table[rows[inside], position[inside]].to(output.dtype)
            return added

        with add_at_positions(lm.adapter.residual(self.build_hparams["layer"]), delta):
            yield
