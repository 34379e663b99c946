"""Query-SAE steering (Bhattacharyya & Rooshenas): gradient steps on the sparse code of the
attention query, toward a prototype of the target level.

An SAE trained on the pre-RoPE query of one layer encodes the query q of each steered position
into a code z0. A few gradient steps move the code toward the target level's prototype (the
mean code over the level's exemplar texts, read teacher-forced under the task's prompt) while
a penalty keeps it near z0; codes stay non-negative. The query becomes
`q + decode(z) - decode(z0)`: the SAE's error term is kept, so at strength 0 the model is
exactly the unsteered one. Weights stay frozen; attention runs on the edited query.

Positions steered: `generated` (every generated token, and the last prompt position, which
produces the first one) or `all` (the prompt too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import datasets
import torch

from bench.data.levels import LEVELS, Level
from bench.data.tasks import Message
from bench.errors import ConfigError
from bench.hooks import current_phase, replace_site
from bench.methods.activations import reply_activations
from bench.methods.base import HParam, Steerer
from bench.models.attention import eager_attention
from bench.models.generation import joiner, render_prompt
from bench.models.loading import LoadedModel
from bench.sae.base import SparseAutoencoder, weights_sha256
from bench.sae.registry import load_sae


def code_step(
    z0: torch.Tensor,
    prototype: torch.Tensor,
    steps: int,
    lr: float,
    anchor: float,
    distance: str,
) -> torch.Tensor:
    """`steps` projected gradient steps on the codes z0 [n, d_sae] minimizing
    distance(z, prototype) + anchor * ||z - z0||^2, keeping z >= 0."""
    if steps == 0 or lr == 0:
        return z0
    with torch.enable_grad():
        z = z0.detach().clone()
        for _ in range(steps):
            z.requires_grad_(True)
            if distance == "cosine":
                gap = 1 - torch.nn.functional.cosine_similarity(z, prototype[None], dim=-1)
            else:
                gap = (z - prototype).pow(2).sum(-1)
            loss = (gap + anchor * (z - z0).pow(2).sum(-1)).sum()
            (grad,) = torch.autograd.grad(loss, z)
            z = (z.detach() - lr * grad).clamp(min=0)
    return z.detach()


class QuerySAESteering(Steerer):
    """Prototype gradient steering in the sparse code of an attention-query SAE."""

    name: ClassVar[str] = "query_sae"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam("sae", "str", doc="directory of a query-site SAE (bench sae train)", stage="build"),
        HParam("strength", "float", 0.25, "learning rate of the code steps (0: unsteered)"),
        HParam("steps", "int", 3, "gradient steps on the code per steered position"),
        HParam("anchor", "float", 0.1, "weight of ||z - z0||^2, keeping the code near z0"),
        HParam("distance", "str", "l2", "distance to the prototype", choices=("l2", "cosine")),
        HParam(
            "positions",
            "str",
            "generated",
            "which positions are steered",
            choices=("generated", "all"),
        ),
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
        sums = torch.zeros(len(LEVELS), self.sae.config.d_sae, device=lm.device)
        counts = torch.zeros(len(LEVELS), device=lm.device)
        replies = reply_activations(lm, lm.adapter.query(self.layer), self.task, exemplars)
        with torch.no_grad():
            for activations, level in zip(replies, exemplars["level"], strict=True):
                index = Level(level).index
                sums[index] += self.sae.encode(activations).sum(0)
                counts[index] += len(activations)
        self.prototypes = sums / counts.clamp(min=1)[:, None]

    def artifacts(self) -> dict[str, str]:
        if self.prototypes is None:
            raise RuntimeError("fit() first")
        prototypes = self.prototypes.detach().cpu().float().numpy().tobytes()
        return {
            "sae_weights": weights_sha256(self.sae_dir),
            "prototypes": hashlib.sha256(prototypes).hexdigest(),
        }

    def edit(
        self, q: torch.Tensor, steer: torch.Tensor, level: Level, **settings: Any
    ) -> torch.Tensor:
        """The query [b, s, d] with the positions in `steer` [b, s] (bool) moved."""
        if not bool(steer.any()) or settings["strength"] == 0 or settings["steps"] == 0:
            return q
        selected = q[steer].float()
        z0 = self.sae.encode(selected)
        z = code_step(
            z0,
            self.prototypes[level.index],
            settings["steps"],
            settings["strength"],
            settings["anchor"],
            settings["distance"],
        )
        out = q.clone()
        out[steer] = (selected + (z - z0) @ self.sae.W_dec / self.sae.scale).to(q.dtype)
        return out

    @torch.no_grad()
    def diagnostics(
        self,
        lm: LoadedModel,
        level: Level,
        prompts: list[list[Message]],
        texts: list[str],
        **settings: Any,
    ) -> list[dict[str, float]]:
        """Attention shift, the paper's mechanism: each text re-read teacher-forced with and
        without the edit (eager attention, this pass only); at the steered layer, the mean KL
        from the clean to the steered attention distribution over heads and steered positions,
        and the mean change of its entropy."""
        results = []
        site = lm.adapter.query(self.layer)
        for messages, text in zip(prompts, texts, strict=True):
            context = render_prompt(lm, messages, self.task.cue)
            head = lm.tokenizer(context, add_special_tokens=False)["input_ids"]
            tail = lm.tokenizer(joiner(context) + text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([head + tail], device=lm.device)
            steer = torch.zeros(ids.shape, dtype=torch.bool, device=lm.device)
            steer[0, 0 if settings["positions"] == "all" else len(head) - 1 :] = True
            with eager_attention(lm.model):
                clean = lm.model(input_ids=ids, output_attentions=True).attentions[self.layer]
                with replace_site(site, lambda q, m=steer: self.edit(q, m, level, **settings)):
                    steered = lm.model(input_ids=ids, output_attentions=True).attentions[self.layer]
            p = clean[0][:, steer[0]].float().clamp(min=1e-12)  # [heads, steered, keys]
            q = steered[0][:, steer[0]].float().clamp(min=1e-12)
            kl = (p * (p.log() - q.log())).sum(-1)
            entropy = -(q * q.log()).sum(-1) + (p * p.log()).sum(-1)
            results.append(
                {
                    "attention_kl": float(kl.mean()),
                    "attention_entropy_change": float(entropy.mean()),
                }
            )
        return results

    @contextmanager
    def steering(self, lm: LoadedModel, level: Level, **settings: Any) -> Iterator[None]:
        if self.prototypes is None:
            raise RuntimeError("fit() first")

        def hook_edit(q: torch.Tensor) -> torch.Tensor:
            phase = current_phase()
            steer = torch.zeros(q.shape[:2], dtype=torch.bool, device=q.device)
            if phase is None or not phase.prompt or settings["positions"] == "all":
                steer[:] = True
            else:
                steer[:, -1] = True  # the last prompt position produces the first token
            if phase is not None and phase.prompt and phase.attention_mask is not None:
                steer &= phase.attention_mask.bool().to(q.device)
            return self.edit(q, steer, level, **settings)

        with replace_site(lm.adapter.query(self.layer), hook_edit):
            yield
