"""CAA / DiffMean steering vectors (Rimsky/Panickssery et al. 2024; AxBench's DiffMean).

Per target level, the vector is the mean residual activation at layer l over the reply tokens
of that level's exemplars minus the mean over the other levels' exemplars (tokens pooled).
It is added with coefficient c at every generated position and at the last prompt position,
so the first generated token is steered too. `scale: unit` makes the vector unit-norm (c is
an absolute size); `scale: median` sets its norm to the median token norm at that layer
(c is relative: SmolLM2's mean residual norm is dominated by a few outlier tokens).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, ClassVar

import datasets
import torch

from bench.data.levels import LEVELS, Level
from bench.data.roles import dataset_sha256
from bench.hooks import Phase, prompt_ends
from bench.methods.activations import (
    add_at_positions,
    cached_vectors,
    level_indices,
    pass_levels,
    reply_activations,
    tensors_sha256,
)
from bench.methods.base import HParam, Steerer, source_sha256
from bench.models.loading import LoadedModel
from bench.models.prefill import Reach


def diff_means(per_text: list[torch.Tensor], levels: list[str]) -> torch.Tensor:
    """[6, d]: per level, mean over its texts' tokens minus mean over the other levels'."""
    rows = []
    for level in LEVELS:
        mine = [a for a, lv in zip(per_text, levels, strict=True) if lv == level.value]
        rest = [a for a, lv in zip(per_text, levels, strict=True) if lv != level.value]
        rows.append(torch.cat(mine).mean(0) - torch.cat(rest).mean(0))
    return torch.stack(rows)


class DiffMeanSteering(Steerer):
    """Add the target level's mean-difference vector to the residual stream."""

    name: ClassVar[str] = "caa"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam("layer", "layer", 12, "residual layer the vector is read and added at", "build"),
        HParam(
            "scale",
            "str",
            "unit",
            "unit-norm vector, or scaled to the median token norm",
            "build",
            choices=("unit", "median"),
        ),
        HParam("coefficient", "float", 32.0, "multiple of the (scaled) vector that is added"),
    )

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        layer = self.build_hparams["layer"]

        def compute() -> dict[str, torch.Tensor]:
            acts = reply_activations(lm, lm.adapter.residual(layer), self.task, exemplars)
            raw = diff_means(acts, list(exemplars["level"]))
            median = torch.cat(acts).norm(dim=-1).median()
            return {"raw": raw, "median_norm": median.reshape(1)}

        parts = {
            "method": self.name,
            "code": source_sha256(type(self)),
            "weights": lm.weights_sha256,
            "layer": layer,
            "task": self.task.fingerprint,
            "exemplars": dataset_sha256(exemplars),
        }
        self.vectors = cached_vectors(parts, compute)

    def direction(self, level: Level) -> torch.Tensor:
        """The vector added at coefficient 1."""
        raw = self.vectors["raw"][level.index]
        unit = raw / raw.norm().clamp(min=1e-12)
        if self.build_hparams["scale"] == "median":
            return unit * self.vectors["median_norm"][0]
        return unit

    def artifacts(self) -> dict[str, str]:
        return {"vectors": tensors_sha256(self.vectors)}

    def prompt_reach(self, **settings: Any) -> Reach:
        return "last"

    @contextmanager
    def steering(
        self, lm: LoadedModel, levels: Level | Sequence[Level], **settings: Any
    ) -> Iterator[None]:
        table = torch.stack([self.direction(level) for level in LEVELS]).to(lm.device)
        vectors = settings["coefficient"] * table
        indices = level_indices(levels, lm.device)

        def delta(output: torch.Tensor, phase: Phase | None) -> torch.Tensor | None:
            if settings["coefficient"] == 0:
                return None
            rows = vectors[pass_levels(indices, phase, output.shape[0])].to(output.dtype)
            added = torch.zeros_like(output)
            if phase is not None and phase.prompt:
                ends = prompt_ends(phase, output.shape[0], output.device)
                added[ends, -1] = rows[ends]  # the last position is real in every row
            else:
                added[:] = rows[:, None]
            return added

        with add_at_positions(lm.adapter.residual(self.build_hparams["layer"]), delta):
            yield
