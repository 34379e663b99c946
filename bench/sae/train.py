"""Train an SAE on an activation store: Adam with warmup and decay, a shuffled buffer,
inputs normalized to a mean squared norm of d_in, decoder bias initialized at the data's
geometric median, unit-norm decoder rows, and AuxK against dead latents.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tqdm.auto import tqdm

from bench.errors import ConfigError
from bench.sae.activations import load_split, read_metadata, sample_split, shard_paths
from bench.sae.base import SAEConfig, SparseAutoencoder
from bench.sae.metrics import reconstruction_metrics
from bench.sae.registry import ARCHITECTURES, make_sae

HOOK_NAMES = {"query": "blocks.{layer}.attn.hook_q", "residual": "blocks.{layer}.hook_resid_post"}


@dataclass(frozen=True)
class TrainSettings:
    """How an SAE is trained (saved with it)."""

    architecture: str = "topk"
    """'topk' (default), 'relu' (ReLU + L1) or 'jumprelu'."""
    expansion: int = 8
    """d_sae = expansion * d_in."""
    k: int = 32
    """Active latents per token (topk)."""
    l1_coefficient: float = 5.0
    """Sparsity penalty (relu: L1; jumprelu: L0)."""
    lr: float = 5e-4
    batch_size: int = 4096
    epochs: float = 4.0
    """Passes over the training activations."""
    warmup_steps: int = 50
    decay_fraction: float = 0.2
    """Share of the steps at the end over which the learning rate decays linearly to 0."""
    aux_k: int = 256
    """Dead latents used by the AuxK loss to reconstruct the residual error."""
    aux_coefficient: float = 1 / 32
    dead_tokens: int = 200_000
    """A latent is dead when it has not fired on this many training tokens."""
    buffer_tokens: int = 1 << 21
    """Tokens shuffled together (a store smaller than this is shuffled whole)."""
    train_tokens: int | None = None
    """Use only the first this many training activations (for data-scaling curves)."""
    eval_tokens: int = 65_536
    """Held-out tokens for the learning curve, evenly spaced over the held-out split."""
    eval_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            names = ", ".join(ARCHITECTURES)
            raise ConfigError(f"unknown architecture {self.architecture!r}; choose from: {names}")
        if self.expansion < 1 or self.k < 1 or self.batch_size < 1 or self.epochs <= 0:
            raise ConfigError("expansion, k, batch_size and epochs must be positive")


def shuffled_batches(
    directory: str | Path,
    batch_size: int,
    buffer_tokens: int,
    generator: torch.Generator,
    limit: int | None = None,
) -> Iterator[torch.Tensor]:
    """One epoch of float32 batches: shards in random order, shuffled within a buffer;
    `limit` keeps only the first that many activations of the split."""
    paths = shard_paths(directory, "train")
    if limit:
        keep, total = [], 0
        for path in paths:
            with safe_open(str(path), "pt") as handle:
                size = handle.get_slice("activations").get_shape()[0]
            if total >= limit:
                break
            keep.append((path, min(size, limit - total)))
            total += size
    else:
        keep = [(path, None) for path in paths]
    order = torch.randperm(len(keep), generator=generator).tolist()
    buffer: list[torch.Tensor] = []
    size = 0

    def drain(tensors: list[torch.Tensor]) -> Iterator[torch.Tensor]:
        data = torch.cat(tensors)
        data = data[torch.randperm(len(data), generator=generator)]
        for start in range(0, len(data) - batch_size + 1, batch_size):
            yield data[start : start + batch_size].float()

    for i in order:
        path, rows = keep[i]
        part = load_file(str(path))["activations"][:rows]
        buffer.append(part)
        size += len(part)
        if size >= buffer_tokens:
            yield from drain(buffer)
            buffer, size = [], 0
    if buffer:
        yield from drain(buffer)


def geometric_median(points: torch.Tensor, iterations: int = 30) -> torch.Tensor:
    """Weiszfeld's algorithm: the point minimizing the sum of distances to `points`."""
    median = points.mean(dim=0)
    for _ in range(iterations):
        weights = 1.0 / (points - median).norm(dim=1).clamp(min=1e-6)
        median = (points * weights[:, None]).sum(0) / weights.sum()
    return median


def _lr_factor(step: int, total: int, settings: TrainSettings) -> float:
    if step < settings.warmup_steps:
        return (step + 1) / settings.warmup_steps
    decay_start = int(total * (1 - settings.decay_fraction))
    if step >= decay_start:
        return max(0.0, (total - step) / max(total - decay_start, 1))
    return 1.0


def aux_loss(
    sae: SparseAutoencoder, x: torch.Tensor, error: torch.Tensor, dead: torch.Tensor, k: int
) -> torch.Tensor:
    """AuxK: the top-k dead latents' reconstruction of the residual error, normalized MSE
    (`x` already scaled)."""
    n_dead = int(dead.sum())
    if n_dead == 0:
        return x.new_zeros(())
    dead_pre = (x - sae.b_dec) @ sae.W_enc[:, dead] + sae.b_enc[dead]
    values, indices = torch.topk(dead_pre, min(k, n_dead), dim=-1)
    codes = torch.zeros_like(dead_pre).scatter(-1, indices, values.relu())
    estimate = codes @ sae.W_dec[dead]
    return (estimate - error).pow(2).sum(-1).mean() / error.pow(2).sum(-1).mean().clamp(min=1e-9)


def optimizer_step(
    sae: SparseAutoencoder, optimizer: torch.optim.Optimizer, loss: torch.Tensor, lr: float
) -> None:
    """One Adam step at `lr` that keeps the decoder rows unit-norm (the gradient's part along
    each row is dropped first, the rows renormalized after)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    sae.remove_parallel_gradient()
    optimizer.step()
    sae.normalize_decoder()


def train(
    store: str | Path, settings: TrainSettings, out: str | Path, device: str = "cpu"
) -> dict[str, Any]:
    """Train on `store`'s training split, save to `out`; returns the training log."""
    meta = read_metadata(store)
    torch.manual_seed(settings.seed)
    random.seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    sample = load_split(store, "train", limit=65_536).to(device)
    d_in = sample.shape[1]
    scale = math.sqrt(d_in / sample.pow(2).sum(-1).mean().item())
    config = SAEConfig(
        architecture=settings.architecture,
        d_in=d_in,
        d_sae=settings.expansion * d_in,
        k=settings.k,
        l1_coefficient=settings.l1_coefficient,
        model_name=meta["model"],
        hook_name=HOOK_NAMES[meta["site"]].format(layer=meta["layer"]),
        hook_layer=meta["layer"],
        site=meta["site"],
        normalization_scale=scale,
        metadata={"store": meta, "train": asdict(settings)},
    )
    sae = make_sae(config).to(device)
    with torch.no_grad():
        sae.b_dec.copy_(geometric_median(sample * scale))
    heldout = sample_split(store, "heldout", settings.eval_tokens).to(device)
    optimizer = torch.optim.Adam(sae.parameters(), lr=settings.lr, betas=(0.9, 0.999))
    available = meta["tokens"]["train"]
    if settings.train_tokens is not None:
        available = min(available, settings.train_tokens)
    steps_per_epoch = max(1, available // settings.batch_size)
    total = max(1, int(steps_per_epoch * settings.epochs))
    since_fired = torch.zeros(config.d_sae, device=device)
    curve = []
    step = 0
    with tqdm(total=total, desc=f"training {settings.architecture} SAE", unit="step") as bar:
        while step < total:
            for batch in shuffled_batches(
                store,
                settings.batch_size,
                settings.buffer_tokens,
                generator,
                settings.train_tokens,
            ):
                if step >= total:
                    break
                x = batch.to(device) * scale
                x_hat, fired, sparsity = sae.training_pass(x)
                mse = (x_hat - x).pow(2).sum(-1).mean()
                since_fired = torch.where(fired, 0.0, since_fired + len(x))
                dead = since_fired >= settings.dead_tokens
                loss = mse / d_in + sparsity / d_in
                if settings.aux_coefficient > 0:
                    error = (x - x_hat).detach()
                    loss = loss + settings.aux_coefficient * aux_loss(
                        sae, x, error, dead, settings.aux_k
                    )
                optimizer_step(
                    sae, optimizer, loss, settings.lr * _lr_factor(step, total, settings)
                )
                step += 1
                if step % settings.eval_every == 0 or step == total:
                    with torch.no_grad():
                        metrics = reconstruction_metrics(sae, heldout)
                    curve.append({"step": step, "tokens": step * settings.batch_size, **metrics})
                    bar.set_postfix(
                        loss=f"{loss.item():.4f}",
                        ev=f"{metrics['explained_variance']:.3f}",
                        l0=f"{metrics['l0']:.1f}",
                        dead=f"{float(dead.float().mean()):.3f}",
                    )
                bar.update(1)
    sae.save(out)
    log = {"settings": asdict(settings), "steps": total, "curve": curve, "store": meta}
    (Path(out) / "training_log.json").write_text(json.dumps(log, indent=2) + "\n")
    return log
