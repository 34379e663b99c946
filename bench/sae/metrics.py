"""SAE evaluation under SAELens / SAEBench's names: `explained_variance`, `l0`, `frac_alive`,
and the language-model cost of splicing the SAE in (`ce_loss_score`, `kl_div_score`, with the
losses and divergences they come from). Files written under older names still load
(`bench.sae.metric_names`).
"""

from __future__ import annotations

from typing import Any

import torch

from bench.hooks import replace_site
from bench.models.loading import LoadedModel
from bench.sae.activations import batches, site_for
from bench.sae.base import SparseAutoencoder
from bench.sae.corpus import Document


@torch.no_grad()
def reconstruction_metrics(
    sae: SparseAutoencoder, activations: torch.Tensor, batch_size: int = 8192
) -> dict[str, float]:
    """Explained variance (1 - residual / total variance), mean L0, and the share of latents
    that fire at least once on `activations` [n, d_in]."""
    residual = total = l0 = 0.0
    fired = torch.zeros(sae.config.d_sae, dtype=torch.bool, device=activations.device)
    mean = activations.mean(dim=0)
    for start in range(0, len(activations), batch_size):
        x = activations[start : start + batch_size]
        x_hat, z = sae(x)
        residual += (x - x_hat).pow(2).sum().item()
        total += (x - mean).pow(2).sum().item()
        active = z > 0
        l0 += active.sum().item()
        fired |= active.any(dim=0)
    return {
        "explained_variance": 1 - residual / total,
        "l0": l0 / len(activations),
        "frac_alive": fired.float().mean().item(),
    }


def _logprobs(lm: LoadedModel, input_ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    logits = lm.model(input_ids=input_ids, attention_mask=attention).logits[:, :-1]
    return torch.log_softmax(logits.float(), dim=-1)


@torch.no_grad()
def splice_metrics(
    lm: LoadedModel,
    sae: SparseAutoencoder,
    docs: list[Document],
    batch_size: int = 8,
    context: int = 384,
) -> dict[str, float]:
    """Next-token CE with the site clean, replaced by the SAE's reconstruction, and zeroed;
    ce_loss_score = (CE_zero - CE_sae) / (CE_zero - CE_clean); the mean KL from the clean
    model with the SAE and with the site zeroed, and kl_div_score = (KL_zero - KL_sae) /
    KL_zero."""
    site = site_for(lm, sae.config.site, sae.config.hook_layer)
    device = lm.device
    sae = sae.to(device)
    sums = {"clean": 0.0, "sae": 0.0, "zero": 0.0, "kl_sae": 0.0, "kl_zero": 0.0}
    count = 0
    for _, input_ids, attention, _ in batches(lm, docs, batch_size, context):
        input_ids, attention = input_ids.to(device), attention.to(device)
        target = input_ids[:, 1:]
        scored = attention[:, 1:].bool()

        clean = _logprobs(lm, input_ids, attention)
        with replace_site(site, lambda q: sae(q.float())[0].to(q.dtype)):
            spliced = _logprobs(lm, input_ids, attention)
        with replace_site(site, torch.zeros_like):
            zeroed = _logprobs(lm, input_ids, attention)
        for name, values in (("clean", clean), ("sae", spliced), ("zero", zeroed)):
            nll = -values.gather(-1, target[..., None]).squeeze(-1)
            sums[name] += nll[scored].sum().item()
        for name, values in (("kl_sae", spliced), ("kl_zero", zeroed)):
            kl = (clean.exp() * (clean - values)).sum(-1)
            sums[name] += kl[scored].sum().item()
        count += int(scored.sum())
    mean = {name: total / count for name, total in sums.items()}
    return {
        "ce_loss_without_sae": mean["clean"],
        "ce_loss_with_sae": mean["sae"],
        "ce_loss_with_ablation": mean["zero"],
        "ce_loss_score": (mean["zero"] - mean["sae"]) / (mean["zero"] - mean["clean"]),
        "kl_div_with_sae": mean["kl_sae"],
        "kl_div_with_ablation": mean["kl_zero"],
        "kl_div_score": (mean["kl_zero"] - mean["kl_sae"]) / mean["kl_zero"],
        "tokens": count,
    }


def evaluate(
    lm: LoadedModel | None,
    sae: SparseAutoencoder,
    heldout: torch.Tensor,
    docs: list[Document] | None,
) -> dict[str, Any]:
    """Reconstruction metrics on held-out activations; splice metrics when a model and
    held-out documents are given."""
    report: dict[str, Any] = {
        "heldout_tokens": len(heldout),
        **reconstruction_metrics(sae, heldout),
    }
    if lm is not None and docs:
        report.update(splice_metrics(lm, sae, docs))
    return report
