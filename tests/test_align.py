"""AlignSAE stage 2 on synthetic data with planted concepts: each concept lands in its own
slot, reconstruction barely suffers, and a slot swap moves the planted readout."""

from __future__ import annotations

import pytest
import torch

from bench.errors import ConfigError
from bench.sae.activations import write_store
from bench.sae.align import (
    AlignSettings,
    LabeledTexts,
    align,
    binding_metrics,
    grow,
    swap_concept,
)
from bench.sae.base import SAEConfig, SparseAutoencoder
from bench.sae.metrics import reconstruction_metrics
from bench.sae.registry import load_sae, make_sae
from bench.sae.train import TrainSettings, train

CONCEPTS = ["a", "b", "c", "d"]
TOKENS_PER_TEXT = 6


def _world(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    """48 unit atoms in 32 dimensions, and 4 planted concept directions (orthogonal to
    each other, random otherwise)."""
    generator = torch.Generator().manual_seed(seed)
    atoms = torch.randn(48, 32, generator=generator)
    atoms /= atoms.norm(dim=1, keepdim=True)
    concepts = torch.linalg.qr(torch.randn(32, len(CONCEPTS), generator=generator))[0].T
    return atoms, concepts, generator


def _tokens(
    n: int, atoms: torch.Tensor, generator: torch.Generator, concept: torch.Tensor | None = None
) -> torch.Tensor:
    picks = torch.rand(n, len(atoms), generator=generator).argsort(dim=1)[:, :3]
    codes = torch.zeros(n, len(atoms)).scatter(
        1, picks, 0.5 + torch.rand(n, 3, generator=generator)
    )
    x = codes @ atoms
    return (
        x if concept is None else x + (1.0 + 0.5 * torch.rand(n, 1, generator=generator)) * concept
    )


def _texts(
    count: int, atoms: torch.Tensor, concepts: torch.Tensor, generator: torch.Generator
) -> LabeledTexts:
    labels = [i % len(CONCEPTS) for i in range(count)]
    texts = [_tokens(TOKENS_PER_TEXT, atoms, generator, concepts[label]) for label in labels]
    return LabeledTexts(texts, labels)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> dict:
    atoms, concepts, generator = _world()
    plain = _tokens(30_000, atoms, generator)
    labeled = _texts(2_000, atoms, concepts, generator)
    data = torch.cat([plain, *labeled.activations])[torch.randperm(42_000, generator=generator)]
    root = tmp_path_factory.mktemp("align")
    meta = {"model": "synthetic", "site": "query", "layer": 0, "weights_sha256": ""}
    store = write_store(root / "store", data[:38_000], data[38_000:], meta)
    settings = TrainSettings(
        expansion=2,
        k=4,
        lr=3e-3,
        batch_size=512,
        epochs=6,
        eval_every=100,
        dead_tokens=20_000,
        aux_k=16,
    )
    train(store, settings, root / "stage1")
    stage1 = load_sae(root / "stage1")
    fit, heldout = _texts(240, atoms, concepts, generator), _texts(80, atoms, concepts, generator)
    align_settings = AlignSettings(
        steps=200, lr=1e-3, batch_size=512, texts_per_step=32, eval_every=100
    )
    align(stage1, store, CONCEPTS, fit, None, align_settings, root / "stage2")
    return {
        "store": store,
        "stage1": stage1,
        "stage2": load_sae(root / "stage2"),
        "heldout": heldout,
        "concepts": concepts,
        "test_tokens": data[38_000:],
    }


def binding_means(sae: SparseAutoencoder, texts: LabeledTexts) -> torch.Tensor:
    """Per concept, its slot's mean activation on its own texts."""
    slots = len(sae.config.concept_slots)
    with torch.no_grad():
        codes = [sae.encode(t)[:, -slots:].mean(0) for t in texts.activations]
    return torch.stack(
        [
            torch.stack([c[k] for c, y in zip(codes, texts.labels, strict=True) if y == k]).mean()
            for k in range(slots)
        ]
    )


def test_each_concept_lands_in_its_slot(planted: dict) -> None:
    metrics = binding_metrics(planted["stage2"], planted["heldout"])
    assert metrics["binding_accuracy"] == 1.0, metrics
    assert metrics["slot_purity"] > 0.5, metrics


def test_alignment_costs_little_reconstruction(planted: dict) -> None:
    before = reconstruction_metrics(planted["stage1"], planted["test_tokens"])["explained_variance"]
    after = reconstruction_metrics(planted["stage2"], planted["test_tokens"])["explained_variance"]
    assert before > 0.8 and before - after < 0.02, (before, after)


def test_the_aligned_sae_saves_its_slots(planted: dict) -> None:
    sae = planted["stage2"]
    assert sae.config.concept_slots == CONCEPTS
    assert sae.config.d_sae == planted["stage1"].config.d_sae + len(CONCEPTS)
    assert sae.config.metadata["align"]["settings"]["steps"] == 200


def test_a_swap_moves_the_planted_readout_to_the_target(planted: dict) -> None:
    sae, concepts = planted["stage2"], planted["concepts"]
    slots = torch.arange(sae.config.d_sae - len(CONCEPTS), sae.config.d_sae)
    texts = planted["heldout"]
    means = binding_means(sae, texts)
    moved = 0
    for tokens, label in zip(texts.activations, texts.labels, strict=True):
        target = (label + 1) % len(CONCEPTS)
        with torch.no_grad():
            edited = swap_concept(sae, tokens, slots, target, 2.0 * means[target].item())
        readout = (edited @ concepts.T).mean(0).argmax().item()
        moved += readout == target
    assert moved / len(texts.labels) >= 0.9, moved


def test_a_swap_to_the_current_value_changes_nothing(planted: dict) -> None:
    sae = planted["stage2"]
    one = planted["heldout"].activations[0][:1]
    slots = torch.arange(sae.config.d_sae - len(CONCEPTS), sae.config.d_sae)
    with torch.no_grad():
        z = sae.encode(one)[0, slots]
        current = int(z.argmax())
        same = swap_concept(sae, one, slots, current, float(z[current]))
    assert torch.allclose(same, one, atol=1e-6)


def test_stage2_refuses_jumprelu_and_double_alignment(planted: dict) -> None:
    jumprelu = make_sae(SAEConfig(architecture="jumprelu", d_in=4, d_sae=8))
    with pytest.raises(ConfigError, match="topk or relu"):
        grow(jumprelu, CONCEPTS)
    with pytest.raises(ConfigError, match="already aligned"):
        grow(planted["stage2"], CONCEPTS)
    with pytest.raises(ConfigError, match="pooling"):
        AlignSettings(pooling="median")
