"""AlignSAE steering (Yang et al. 2025): at an SAE's query site, swap concept slots.

With an aligned SAE (`bench sae align`), each Bloom level owns a slot. With a stage-1 SAE,
each level's stand-in slot is the latent whose mean activation on that level's exemplars
exceeds its mean on the other levels' the most (the paper's ablation: what alignment adds).
At every steered position: encode, zero the most active level slot, set the target's to
alpha times its mean activation on the target level's exemplars, decode, and keep the SAE's
error term. alpha = 0 is the unsteered model exactly. The SAE, the per-level mean codes, the
positions rule and the attention-shift diagnostics are `SAESiteSteerer`'s.
"""

from __future__ import annotations

from typing import Any, ClassVar

import datasets
import torch

from bench.data.levels import LEVELS
from bench.errors import ConfigError
from bench.methods.base import HParam
from bench.methods.sae_site import SAESiteSteerer
from bench.models.loading import LoadedModel
from bench.sae.align import swap_concept


def separating_latents(prototypes: torch.Tensor) -> torch.Tensor:
    """[n_levels] distinct latents: per level in order, the one whose mean code on that level
    most exceeds its mean over the other levels (prototypes: [n_levels, d_sae])."""
    n = len(prototypes)
    others = (prototypes.sum(0, keepdim=True) - prototypes) / max(n - 1, 1)
    gap = prototypes - others
    chosen: list[int] = []
    for level in range(n):
        scores = gap[level].clone()
        scores[chosen] = -torch.inf
        chosen.append(int(scores.argmax()))
    return torch.tensor(chosen)


class AlignSAESteering(SAESiteSteerer):
    """Concept swap in an aligned (or, as the ablation, a stage-1) query SAE."""

    name: ClassVar[str] = "align_sae"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam(
            "sae",
            "str",
            doc="directory of a query-site SAE (aligned or stage 1)",
            stage="build",
        ),
        HParam(
            "alpha",
            "float",
            2.0,
            "target slot = alpha x its mean on the level (0: unsteered)",
        ),
        SAESiteSteerer.POSITIONS,
    )

    def __init__(self, task: Any, **build: Any) -> None:
        super().__init__(task, **build)
        slots = self.sae.config.concept_slots
        if slots and slots != [level.value for level in LEVELS]:
            raise ConfigError(f"{self.sae_dir}: slots {slots} are not the six Bloom levels")
        self.latents: torch.Tensor | None = None
        self.means: torch.Tensor | None = None

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        """The level slots and each one's mean activation on its level's exemplar tokens."""
        super().fit(lm, exemplars)
        d_sae, slots = self.sae.config.d_sae, len(self.sae.config.concept_slots)
        if slots:
            self.latents = torch.arange(d_sae - slots, d_sae, device=self.prototypes.device)
        else:
            self.latents = separating_latents(self.prototypes).to(self.prototypes.device)
        self.means = self.prototypes[torch.arange(len(LEVELS)), self.latents]

    def learned(self) -> tuple[str, torch.Tensor]:
        if self.latents is None or self.means is None:
            raise RuntimeError("fit() first")
        return "slots", torch.cat([self.latents.float(), self.means])

    def edit(
        self,
        q: torch.Tensor,
        steer: torch.Tensor,
        levels: torch.Tensor,
        **settings: Any,
    ) -> torch.Tensor:
        """The query [b, s, d] with the positions in `steer` [b, s] (bool) swapped to each
        row's level (`levels`: [b] level indices)."""
        if not bool(steer.any()) or settings["alpha"] == 0:
            return q
        target = levels[steer.nonzero()[:, 0]]
        value = settings["alpha"] * self.means[target].double()  # as a Python float would
        out = q.clone()
        swapped = swap_concept(self.sae, q[steer].float(), self.latents, target, value)
        out[steer] = swapped.to(q.dtype)
        return out
