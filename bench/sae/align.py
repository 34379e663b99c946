"""AlignSAE stage 2 (Yang et al. 2025): post-train a pre-trained SAE so that each concept owns
one latent slot.

The stage-1 SAE grows by one ReLU latent per concept (the slots, last in the code); the free
latents keep the stage-1 weights and go on reconstructing. The loss adds to the (normalized)
reconstruction error and the architecture's sparsity term
`bind * cross-entropy(slot activations pooled over a text's tokens, concept)` on labeled texts
and `decorrelation * mean squared correlation(slots, free latents)` on unlabeled tokens.

Knows nothing of models or methods: labeled texts come in as activation tensors.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from bench.errors import ConfigError
from bench.sae.activations import sample_split
from bench.sae.base import SparseAutoencoder
from bench.sae.metrics import reconstruction_metrics
from bench.sae.registry import make_sae
from bench.sae.train import optimizer_step, shuffled_batches

ALIGNABLE = ("topk", "relu")
"""Architectures whose free latents' rule applies to a slice of the code (JumpReLU's learned
thresholds are per latent and would need growing too)."""


@dataclass(frozen=True)
class AlignSettings:
    """How stage 2 is trained (saved with the aligned SAE)."""

    bind: float = 1.0
    """Weight of the binding cross-entropy."""
    decorrelation: float = 1.0
    """Weight of the mean squared correlation between slot and free-latent activations."""
    pooling: str = "mean"
    """How a text's per-token slot activations become its concept logits: 'mean' or 'max'."""
    steps: int = 300
    lr: float = 1e-3
    """Adam learning rate for every parameter (slots and free latents). 1e-3 was chosen on
    validation scenarios for smollm2-135m (binding 0.864 / 0.924 / 0.924 at 2e-4 / 1e-3 /
    2e-3; ties go to the smaller rate); see results/sae/README.md."""
    warmup_steps: int = 20
    batch_size: int = 4096
    """Unlabeled tokens per step (reconstruction and decorrelation)."""
    texts_per_step: int = 64
    """Labeled texts per step (binding)."""
    eval_every: int = 50
    eval_tokens: int = 65_536
    """Held-out unlabeled tokens for the explained-variance curve, evenly spaced over the split."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.pooling not in ("mean", "max"):
            raise ConfigError(f"pooling must be 'mean' or 'max', got {self.pooling!r}")
        if self.bind < 0 or self.decorrelation < 0:
            raise ConfigError("bind and decorrelation must be non-negative")
        if min(self.steps, self.batch_size, self.texts_per_step, self.eval_every) < 1:
            raise ConfigError("steps, batch_size, texts_per_step and eval_every must be positive")


@dataclass
class LabeledTexts:
    """Per text, the SAE site's activations over its tokens [n_tokens, d_in], and its concept
    index (into the aligned SAE's `concept_slots`)."""

    activations: list[torch.Tensor]
    labels: list[int]

    def __post_init__(self) -> None:
        if len(self.activations) != len(self.labels) or not self.labels:
            raise ConfigError("labeled texts: need one label per text, and at least one text")


def grow(
    sae: SparseAutoencoder,
    concepts: list[str],
    seed: int = 0,
    metadata: dict[str, Any] | None = None,
    directions: torch.Tensor | None = None,
) -> SparseAutoencoder:
    """The stage-1 SAE plus one slot per concept; the free latents compute exactly what they
    computed before. A slot's decoder row (and, tied, its encoder column) starts at the
    concept's direction in `directions` [n_concepts, d_in] (input space), else at random;
    `metadata` is added to the stage-1 config's."""
    if sae.config.architecture not in ALIGNABLE:
        raise ConfigError(
            f"stage 2 needs a {' or '.join(ALIGNABLE)} SAE, not {sae.config.architecture}"
        )
    if sae.config.concept_slots:
        raise ConfigError("this SAE is already aligned")
    d_free, n = sae.config.d_sae, len(concepts)
    config = replace(
        sae.config,
        d_sae=d_free + n,
        concept_slots=list(concepts),
        metadata={**sae.config.metadata, **(metadata or {})},
    )
    grown = make_sae(config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        # A saved SAE has its input scale folded into the weights (decoder rows of norm
        # 1/scale): unfold it, so rows are unit-norm again while training.
        scale = sae.scale / sae.W_dec.norm(dim=1).mean()
        grown.scale.copy_(scale)
        grown.W_enc[:, :d_free] = sae.W_enc * sae.scale / scale
        if directions is None:
            directions = torch.randn(n, sae.config.d_in, generator=generator)
        rows = directions / directions.norm(dim=1, keepdim=True).clamp(min=1e-8)
        grown.W_enc[:, :d_free] = sae.W_enc * sae.scale / scale
        grown.W_enc[:, d_free:] = rows.T
        grown.b_enc[:d_free] = sae.b_enc
        grown.b_enc[d_free:] = 0
        grown.W_dec[:d_free] = sae.W_dec * scale / sae.scale
        grown.W_dec[d_free:] = rows
        grown.b_dec.copy_(sae.b_dec * scale / sae.scale)
    return grown


def concept_directions(labeled: LabeledTexts, n_concepts: int) -> torch.Tensor:
    """[n_concepts, d_in]: per concept, the mean of its texts' tokens minus the mean over the
    other concepts' (where each slot starts, as the decoder bias starts at the data)."""
    means = torch.stack(
        [
            torch.cat(
                [a for a, y in zip(labeled.activations, labeled.labels, strict=True) if y == k]
            ).mean(0)
            for k in range(n_concepts)
        ]
    )
    others = (means.sum(0, keepdim=True) - means) / max(n_concepts - 1, 1)
    return means - others


def slot_logits(sae: SparseAutoencoder, texts: list[torch.Tensor], pooling: str) -> torch.Tensor:
    """[n_texts, n_slots]: each text's slot activations pooled over its tokens."""
    slots = len(sae.config.concept_slots)
    pooled = []
    for activations in texts:
        z = sae.encode(activations)[:, -slots:]
        pooled.append(z.mean(0) if pooling == "mean" else z.max(0).values)
    return torch.stack(pooled)


def decorrelation_loss(slots: torch.Tensor, free: torch.Tensor) -> torch.Tensor:
    """Mean squared Pearson correlation between each slot and each free latent over tokens."""

    def standardized(z: torch.Tensor) -> torch.Tensor:
        centered = z - z.mean(0)
        return centered / centered.pow(2).mean(0).sqrt().clamp(min=1e-6)

    correlation = standardized(slots).T @ standardized(free) / len(slots)
    return correlation.pow(2).mean()


@torch.no_grad()
def binding_metrics(
    sae: SparseAutoencoder, labeled: LabeledTexts, pooling: str = "mean"
) -> dict[str, Any]:
    """Binding accuracy (argmax slot = concept), and slot purity: per slot, the share of its
    pooled activation mass that falls on texts of its own concept (1 = fires only there)."""
    logits = slot_logits(sae, labeled.activations, pooling)
    labels = torch.tensor(labeled.labels)
    accuracy = (logits.argmax(-1) == labels).float().mean().item()
    own = torch.zeros(logits.shape[1])
    for slot in range(logits.shape[1]):
        own[slot] = logits[labels == slot, slot].sum() / logits[:, slot].sum().clamp(min=1e-9)
    return {
        "binding_accuracy": accuracy,
        "slot_purity": own.mean().item(),
        "slot_purity_per_concept": dict(zip(sae.config.concept_slots, own.tolist(), strict=True)),
        "binding_texts": len(labels),
    }


def align(
    stage1: SparseAutoencoder,
    store: str | Path,
    concepts: list[str],
    fit: LabeledTexts,
    validation: LabeledTexts | None,
    settings: AlignSettings,
    out: str | Path,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Post-train `stage1` on the activation store `store` and the labeled `fit` texts; save
    the aligned SAE to `out`; returns the training log. The curve's binding is read on
    `validation` (texts to choose settings on), or on `fit` when there is none: held-out
    texts belong to `bench sae eval` alone, so nothing here can be tuned on them."""
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    align_meta = {"align": {"settings": asdict(settings), **(provenance or {})}}
    sae = grow(stage1, concepts, settings.seed, align_meta, concept_directions(fit, len(concepts)))
    unlabeled_heldout = sample_split(store, "heldout", settings.eval_tokens)
    optimizer = torch.optim.Adam(sae.parameters(), lr=settings.lr)
    slots = len(concepts)
    curve: list[dict[str, Any]] = []
    step = 0
    with tqdm(total=settings.steps, desc="aligning SAE (stage 2)", unit="step") as bar:
        while step < settings.steps:
            for batch in shuffled_batches(store, settings.batch_size, 1 << 21, generator):
                if step >= settings.steps:
                    break
                pre = sae.pre_activation(batch)
                z = sae.codes(pre)
                x_hat = sae.decode(z)
                centered = batch - batch.mean(0)
                recon = (x_hat - batch).pow(2).sum() / centered.pow(2).sum()
                picks = rng.sample(
                    range(len(fit.labels)), min(settings.texts_per_step, len(fit.labels))
                )
                logits = slot_logits(sae, [fit.activations[i] for i in picks], settings.pooling)
                bind = F.cross_entropy(logits, torch.tensor([fit.labels[i] for i in picks]))
                decorrelation = decorrelation_loss(z[:, -slots:], z[:, :-slots])
                sparsity = sae.sparsity_loss(pre, z) / sae.config.d_in
                loss = (
                    recon + sparsity + settings.bind * bind + settings.decorrelation * decorrelation
                )
                warmup = min(1.0, (step + 1) / settings.warmup_steps)
                optimizer_step(sae, optimizer, loss, settings.lr * warmup)
                step += 1
                if step % settings.eval_every == 0 or step == settings.steps:
                    with torch.no_grad():
                        point = {
                            "step": step,
                            **reconstruction_metrics(sae, unlabeled_heldout),
                            **binding_metrics(
                                sae, fit if validation is None else validation, settings.pooling
                            ),
                            "bind_loss": bind.item(),
                            "decorrelation": decorrelation.item(),
                        }
                    point.pop("slot_purity_per_concept")
                    curve.append(point)
                    bar.set_postfix(
                        ev=f"{point['explained_variance']:.3f}",
                        binding=f"{point['binding_accuracy']:.2f}",
                        bind_loss=f"{bind.item():.3f}",
                    )
                bar.update(1)
    sae.eval().save(out)
    log = {
        "settings": asdict(settings),
        "steps": settings.steps,
        "binding_read_on": "fit" if validation is None else "validation",
        "curve": curve,
    }
    (Path(out) / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return log


def swap_concept(
    sae: SparseAutoencoder,
    x: torch.Tensor,
    latents: torch.Tensor,
    target: int | torch.Tensor,
    value: float | torch.Tensor,
) -> torch.Tensor:
    """AlignSAE's concept swap on activations x [n, d_in]: among the concept latents
    `latents` [n_concepts] (indices into the code), zero the most active one per row, set
    `target`'s to `value` (one for all rows, or [n] per row), decode, and keep the SAE's
    error term (what it fails to explain)."""
    z = sae.encode(x)
    edited = z.clone()
    rows = torch.arange(len(z), device=z.device)
    current = latents[z[:, latents].argmax(-1)]
    edited[rows, current] = 0
    edited[rows, latents[target]] = torch.as_tensor(value, dtype=z.dtype, device=z.device)
    return x + (edited - z) @ sae.W_dec / sae.scale
