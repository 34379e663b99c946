"""Query-SAE steering (Bhattacharyya & Rooshenas): gradient steps on the sparse code of the
attention query, toward a prototype of the target level.

An SAE trained on the pre-RoPE query of one layer encodes the query q of each steered position
into a code z0. A few gradient steps move the code toward the target level's prototype (the
mean code over the level's exemplar texts, read teacher-forced under the task's prompt) while
a penalty keeps it near z0; codes stay non-negative. The query becomes
`q + decode(z) - decode(z0)`: the SAE's error term is kept, so at strength 0 the model is
exactly the unsteered one. Weights stay frozen; attention runs on the edited query.
The SAE, the prototypes, the positions rule and the attention-shift diagnostics are
`SAESiteSteerer`'s.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from bench.methods.base import HParam
from bench.methods.sae_site import SAESiteSteerer


def code_step(
    z0: torch.Tensor,
    prototype: torch.Tensor,
    steps: int,
    lr: float,
    anchor: float,
    distance: str,
) -> torch.Tensor:
    """`steps` projected gradient steps on the codes z0 [n, d_sae] minimizing
    distance(z, prototype) + anchor * ||z - z0||^2, keeping z >= 0. `prototype` is one code
    [d_sae] for every row or one per row [n, d_sae]."""
    if steps == 0 or lr == 0:
        return z0
    prototype = prototype.expand_as(z0)
    with torch.enable_grad():
        z = z0.detach().clone()
        for _ in range(steps):
            z.requires_grad_(True)
            if distance == "cosine":
                gap = 1 - torch.nn.functional.cosine_similarity(z, prototype, dim=-1)
            else:
                gap = (z - prototype).pow(2).sum(-1)
            loss = (gap + anchor * (z - z0).pow(2).sum(-1)).sum()
            (grad,) = torch.autograd.grad(loss, z)
            z = (z.detach() - lr * grad).clamp(min=0)
    return z.detach()


class QuerySAESteering(SAESiteSteerer):
    """Prototype gradient steering in the sparse code of an attention-query SAE."""

    name: ClassVar[str] = "query_sae"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam(
            "sae",
            "str",
            doc="directory of a query-site SAE (bench sae train)",
            stage="build",
        ),
        HParam("strength", "float", 0.25, "learning rate of the code steps (0: unsteered)"),
        HParam("steps", "int", 3, "gradient steps on the code per steered position"),
        HParam("anchor", "float", 0.1, "weight of ||z - z0||^2, keeping the code near z0"),
        HParam(
            "distance",
            "str",
            "l2",
            "distance to the prototype",
            choices=("l2", "cosine"),
        ),
        SAESiteSteerer.POSITIONS,
    )

    def learned(self) -> tuple[str, torch.Tensor]:
        if self.prototypes is None:
            raise RuntimeError("fit() first")
        return "prototypes", self.prototypes

    def edit(
        self,
        q: torch.Tensor,
        steer: torch.Tensor,
        levels: torch.Tensor,
        **settings: Any,
    ) -> torch.Tensor:
        """The query [b, s, d] with the positions in `steer` [b, s] (bool) moved toward each
        row's level (`levels`: [b] level indices)."""
        if not bool(steer.any()) or settings["strength"] == 0 or settings["steps"] == 0:
            return q
        selected = q[steer].float()
        z0 = self.sae.encode(selected)
        z = code_step(
            z0,
            self.prototypes[levels[steer.nonzero()[:, 0]]],
            settings["steps"],
            settings["strength"],
            settings["anchor"],
            settings["distance"],
        )
        out = q.clone()
        out[steer] = (selected + (z - z0) @ self.sae.W_dec / self.sae.scale).to(q.dtype)
        return out
