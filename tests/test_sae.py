"""SAEs: planted dictionaries are recovered, save/load is exact, collection reads the sites."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from bench.hooks import read_site
from bench.models.loading import LoadedModel
from bench.sae.activations import (
    CollectionSettings,
    collect,
    evenly_spaced,
    load_split,
    read_metadata,
    sample_split,
    write_store,
)
from bench.sae.base import SAEConfig, SparseAutoencoder
from bench.sae.corpus import Document
from bench.sae.metric_names import current_names
from bench.sae.metrics import reconstruction_metrics, splice_metrics
from bench.sae.registry import ARCHITECTURES, load_sae, make_sae
from bench.sae.train import TrainSettings, train


def _planted(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """x = sum of 3 of 48 unit atoms in 24 dimensions, non-negative amplitudes."""
    generator = torch.Generator().manual_seed(seed)
    atoms = torch.randn(48, 24, generator=generator)
    atoms /= atoms.norm(dim=1, keepdim=True)
    picks = torch.rand(n, 48, generator=generator).argsort(dim=1)[:, :3]
    codes = torch.zeros(n, 48).scatter(1, picks, 0.5 + torch.rand(n, 3, generator=generator))
    return codes @ atoms, atoms


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.Tensor]:
    data, atoms = _planted(60_000)
    meta = {"model": "synthetic", "site": "query", "layer": 0, "weights_sha256": ""}
    directory = tmp_path_factory.mktemp("store") / "planted"
    return write_store(directory, data[:54_000], data[54_000:], meta), atoms


def test_topk_sae_recovers_a_planted_dictionary(planted_store, tmp_path: Path) -> None:
    store, atoms = planted_store
    settings = TrainSettings(
        expansion=2,
        k=3,
        lr=3e-3,
        batch_size=512,
        epochs=6,
        eval_every=50,
        dead_tokens=20_000,
        aux_k=16,
    )
    log = train(store, settings, tmp_path / "sae")
    sae = load_sae(tmp_path / "sae")
    decoder = sae.W_dec / sae.W_dec.norm(dim=1, keepdim=True)
    best = (atoms @ decoder.T).max(dim=1).values  # each true atom's closest latent
    assert best.mean() >= 0.9, best
    assert log["curve"][-1]["explained_variance"] > 0.9


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_every_architecture_trains_and_sparsifies(
    planted_store, tmp_path: Path, architecture: str
) -> None:
    store, _ = planted_store
    settings = TrainSettings(
        architecture=architecture,
        expansion=2,
        k=3,
        lr=3e-3,
        batch_size=512,
        epochs=2,
        l1_coefficient=0.5,
        eval_every=50,
    )
    log = train(store, settings, tmp_path / architecture)
    first, last = log["curve"][0], log["curve"][-1]
    assert last["explained_variance"] > 0.6
    assert last["explained_variance"] >= first["explained_variance"] - 0.02
    assert last["l0"] < 48  # sparser than dense


def test_topk_sparse_training_pass_matches_the_dense_one() -> None:
    """The sparse pass (winners' encoder columns and decoder rows only) must give the dense
    pass's reconstruction, fired latents and every gradient."""
    config = SAEConfig("topk", d_in=24, d_sae=96, k=5)
    sae = make_sae(config)
    with torch.no_grad():
        sae.b_enc.uniform_(-0.2, 0.2)
        sae.b_dec.normal_()
    x = torch.randn(64, 24)
    passes = {}
    for name, run in (
        ("sparse", sae.training_pass),
        ("dense", lambda batch: SparseAutoencoder.training_pass(sae, batch)),
    ):
        sae.zero_grad(set_to_none=True)
        x_hat, fired, sparsity = run(x)
        ((x_hat - x).pow(2).sum() + sparsity).backward()
        grads = {n: p.grad.clone() for n, p in sae.named_parameters()}
        passes[name] = (x_hat.detach(), fired, grads)
    (sparse_hat, sparse_fired, sparse_grads), (dense_hat, dense_fired, dense_grads) = (
        passes["sparse"],
        passes["dense"],
    )
    torch.testing.assert_close(sparse_hat, dense_hat, rtol=1e-5, atol=1e-5)
    assert torch.equal(sparse_fired, dense_fired) and 0 < int(dense_fired.sum()) < 96
    for name, grad in dense_grads.items():
        assert grad.abs().sum() > 0, name
        torch.testing.assert_close(sparse_grads[name], grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_save_then_load_is_the_same_function(tmp_path: Path, architecture: str) -> None:
    config = SAEConfig(architecture, d_in=16, d_sae=40, k=4, normalization_scale=2.5)
    sae = make_sae(config)
    with torch.no_grad():
        sae.b_enc.uniform_(-0.1, 0.3)
        sae.b_dec.normal_()
    x = torch.randn(32, 16)
    expected_hat, expected_z = sae(x)
    loaded = load_sae(sae.save(tmp_path / architecture))
    loaded_hat, loaded_z = loaded(x)
    torch.testing.assert_close(loaded_z, expected_z, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(loaded_hat, expected_hat, rtol=1e-5, atol=1e-5)
    assert (tmp_path / architecture / "cfg.json").is_file()


def test_reconstruction_metrics_on_a_perfect_and_a_zero_sae() -> None:
    config = SAEConfig("relu", d_in=4, d_sae=8)
    sae = make_sae(config)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([torch.eye(4), -torch.eye(4)], dim=1))
        sae.W_dec.copy_(torch.cat([torch.eye(4), -torch.eye(4)], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    x = torch.randn(100, 4)
    metrics = reconstruction_metrics(sae, x)  # relu(x) - relu(-x) = x exactly
    assert metrics["explained_variance"] == pytest.approx(1.0) and metrics["frac_alive"] == 1.0
    assert 3.0 < metrics["l0"] <= 4.0


def test_collection_reads_the_site_on_every_architecture(
    tiny_lm: LoadedModel, tmp_path: Path
) -> None:
    docs = [
        Document(f"d{i}", "project", f"Subject: biology. Question {i}: what do cells need?")
        for i in range(12)
    ]
    for site in ("query", "residual"):
        settings = CollectionSettings(
            layer=1, site=site, tokens=10_000, batch_size=4, heldout_fraction=0.3
        )
        meta = collect(tiny_lm, docs, settings, tmp_path / site)
        train_acts = load_split(tmp_path / site, "train")
        width = tiny_lm.adapter.query_width if site == "query" else tiny_lm.model.config.hidden_size
        assert train_acts.shape[1] == width == meta["d"]
        assert meta["tokens"]["train"] == len(train_acts) and meta["tokens"]["heldout"] > 0
        # The first kept row equals the site's output at position 1 of the first train document.
        first = next(d for d in docs if d.heldout_key >= 0.3)
        ids = tiny_lm.tokenizer(first.text, add_special_tokens=False, return_tensors="pt")
        getter = tiny_lm.adapter.query if site == "query" else tiny_lm.adapter.residual
        with torch.no_grad(), read_site(getter(1)) as captured:
            tiny_lm.model(**ids)
        torch.testing.assert_close(train_acts[0], captured[0][0, 1].to(torch.bfloat16).float())
        assert read_metadata(tmp_path / site)["weights_sha256"] == tiny_lm.weights_sha256


def test_sample_split_spreads_over_every_shard(tmp_path: Path) -> None:
    """A learning curve read on a prefix would see only the first source of the corpus."""
    index = torch.arange(1000)
    rows = torch.stack([index // 64, index % 64], dim=1).float()  # exact in bf16 shards
    meta = {"model": "synthetic", "site": "query", "layer": 0, "weights_sha256": ""}
    store = write_store(tmp_path / "ordered", rows[:10], rows, meta, shard_tokens=128)
    sampled = sample_split(store, "heldout", 10)
    sample = sampled[:, 0] * 64 + sampled[:, 1]
    assert sample[0] == 0 and sample[-1] == 999 and len(sample.unique()) == 10
    assert (sample.diff() > 100).all()  # evenly spaced: one row per tenth of the split
    torch.testing.assert_close(sample_split(store, "heldout", 5000), load_split(store, "heldout"))


@pytest.mark.parametrize(("total", "n"), [(582, 100), (10, 3), (7, 7), (5, 9), (1000, 1)])
def test_evenly_spaced_runs_from_the_first_item_to_the_last(total: int, n: int) -> None:
    """A stride cut to `n` (`[::total // n][:n]`) would stop short of the end: 582 documents,
    100 chosen, the last 86 never read."""
    chosen = evenly_spaced(total, n)
    assert len(chosen) == min(n, total) and chosen == sorted(set(chosen))
    assert chosen[0] == 0 and (n == 1 or chosen[-1] == total - 1)
    gaps = [b - a for a, b in itertools.pairwise(chosen)]
    assert not gaps or max(gaps) - min(gaps) <= 1


def test_collection_refuses_an_existing_directory(tiny_llama: LoadedModel, tmp_path: Path) -> None:
    from bench.errors import ConfigError

    (tmp_path / "taken").mkdir()
    with pytest.raises(ConfigError, match="already exists"):
        collect(
            tiny_llama,
            [Document("a", "x", "some text here")],
            CollectionSettings(layer=0),
            tmp_path / "taken",
        )


def test_splice_metrics_are_consistent(tiny_llama: LoadedModel) -> None:
    """An SAE that reconstructs the query exactly recovers all of the CE loss."""
    width = tiny_llama.adapter.query_width
    config = SAEConfig("relu", d_in=width, d_sae=2 * width, hook_layer=1, site="query")
    sae = make_sae(config)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([torch.eye(width), -torch.eye(width)], dim=1))
        sae.W_dec.copy_(torch.cat([torch.eye(width), -torch.eye(width)], dim=0))
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    docs = [
        Document(f"d{i}", "x", f"Subject: biology. Question {i}: what do cells need?")
        for i in range(4)
    ]
    metrics = splice_metrics(tiny_llama, sae, docs)
    assert metrics["ce_loss_score"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["kl_div_with_sae"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["kl_div_score"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["ce_loss_with_ablation"] != pytest.approx(metrics["ce_loss_without_sae"])


def test_an_evaluation_under_the_old_names_reads_under_saelens_names() -> None:
    old = {
        "fve": 0.89,
        "l0": 32.0,
        "dead_fraction": 0.25,
        "ce_loss_recovered": 1.01,
        "kl_to_clean": 0.001,
        "stage1": {"fve": 0.9, "dead_fraction": 0.0},
        "fve_drop": 0.01,
        "curve": [{"tokens": 10, "fve": 0.5}],
    }
    assert current_names(old) == {
        "explained_variance": 0.89,
        "l0": 32.0,
        "frac_alive": 0.75,
        "ce_loss_score": 1.01,
        "kl_div_with_sae": 0.001,
        "stage1": {"explained_variance": 0.9, "frac_alive": 1.0},
        "explained_variance_drop": 0.01,
        "curve": [{"tokens": 10, "explained_variance": 0.5}],
    }
    assert current_names(current_names(old)) == current_names(old)
