"""Run identity: every ingredient that decides a row changes its key; equal settings don't.

Each test changes one ingredient and checks that the keys of the same grid change (or, for
a normalization, that they don't).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest
import torch

import bench.methods.registry as registry
import bench.scoring.fingerprint as fingerprint_module
from bench.config import RunConfig
from bench.models.loading import (
    LoadedModel,
    directory_weights_sha256,
    load_model,
    state_dict_sha256,
)
from bench.runner import build_cells, prepare

PROBE_SOURCE = '''
"""A probe method for identity tests."""
from typing import Any, ClassVar
from bench.methods.base import HParam, Steerer
LEARNED = "v1"

class Probe(Steerer):
    name: ClassVar[str] = "probe"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam("layer", "layer", -1, stage="build"),
        HParam("strength", "float", 1.0),
    )

    def fit(self, lm: Any, exemplars: Any) -> None:
        self.learned = LEARNED

    def artifacts(self) -> dict[str, str]:
        return {"vector": self.learned}
'''


@pytest.fixture
def probe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A method module on disk, registered as 'probe'."""
    path = tmp_path / "probe_method.py"
    path.write_text(PROBE_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(registry.METHODS, "probe", "probe_method:Probe")
    sys.modules.pop("probe_method", None)
    return path


def _keys(config: RunConfig, lm: LoadedModel, scorer: str = "s") -> list[tuple[str, str]]:
    cells = build_cells(prepare(config), lm, scorer)
    return [(c.gen_key, c.cell_hash) for c in cells]


def _config(**changes: object) -> RunConfig:
    base = {"models": ("tiny-llama",), "methods": ("none", "prompting"), "levels": ("Apply",)}
    return RunConfig(**{**base, **changes})


def test_same_inputs_same_keys(tiny_llama: LoadedModel) -> None:
    assert _keys(_config(), tiny_llama) == _keys(_config(), tiny_llama)


def test_exemplar_data_makes_a_new_cell(tiny_llama: LoadedModel, tmp_path: Path) -> None:
    other = tmp_path / "exemplars.csv"
    other.write_text("text,level\nWhat is the capital of Peru?,Remember\n")
    assert set(_keys(_config(), tiny_llama)).isdisjoint(
        _keys(_config(exemplars=str(other)), tiny_llama)
    )


def test_prompt_template_makes_a_new_cell(
    tiny_llama: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _keys(_config(methods=("prompting",)), tiny_llama)
    import baselines.prompting

    monkeypatch.setattr(baselines.prompting, "level_instruction", lambda level, w: "Be brief.")
    assert set(before).isdisjoint(_keys(_config(methods=("prompting",)), tiny_llama))


def test_task_makes_a_new_cell(tiny_llama: LoadedModel) -> None:
    other = _config(task={"request": "Ask one question about this."})
    assert set(_keys(_config(), tiny_llama)).isdisjoint(_keys(other, tiny_llama))


def test_decoding_makes_a_new_cell(tiny_llama: LoadedModel) -> None:
    from bench.models.generation import Decoding

    other = _config(decoding=Decoding(temperature=1.0))
    assert set(_keys(_config(), tiny_llama)).isdisjoint(_keys(other, tiny_llama))


def test_method_code_makes_a_new_cell(tiny_llama: LoadedModel, probe: Path) -> None:
    config = _config(methods=("probe",))
    before = _keys(config, tiny_llama)
    probe.write_text(PROBE_SOURCE + "\n# a changed line of the method's code\n")
    importlib.reload(importlib.import_module("probe_method"))
    assert set(before).isdisjoint(_keys(config, tiny_llama))


def test_learned_artifact_makes_a_new_cell(tiny_llama: LoadedModel, probe: Path) -> None:
    config = _config(methods=("probe",))
    before = _keys(config, tiny_llama)
    module = importlib.import_module("probe_method")
    module.LEARNED = "v2"  # same code, different learned vector
    assert set(before).isdisjoint(_keys(config, tiny_llama))


def test_hyperparameters_are_normalized(tiny_llama: LoadedModel, probe: Path) -> None:
    n = tiny_llama.adapter.n_layers
    as_int = _keys(_config(methods=("probe",), hparams={"probe": {"strength": 4}}), tiny_llama)
    as_float = _keys(_config(methods=("probe",), hparams={"probe": {"strength": 4.0}}), tiny_llama)
    assert as_int == as_float
    last = _keys(_config(methods=("probe",), hparams={"probe": {"layer": n - 1}}), tiny_llama)
    minus_one = _keys(_config(methods=("probe",), hparams={"probe": {"layer": -1}}), tiny_llama)
    assert last == minus_one
    other = _keys(_config(methods=("probe",), hparams={"probe": {"strength": 4.5}}), tiny_llama)
    assert set(as_int).isdisjoint(other)


def test_weights_content_makes_a_new_cell(tiny_llama: LoadedModel) -> None:
    changed = load_model("tiny-llama", dtype="float32", device="cpu")
    with torch.no_grad():
        next(changed.model.parameters())[0, 0] += 1.0
    changed.weights_sha256 = state_dict_sha256(changed.model)
    assert changed.weights_sha256 != tiny_llama.weights_sha256
    assert set(_keys(_config(), tiny_llama)).isdisjoint(_keys(_config(), changed))


def test_weight_files_are_hashed_by_content(tmp_path: Path) -> None:
    """Same file names and sizes, different bytes: a different fingerprint."""
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"\x00" * 64)
    before = directory_weights_sha256(tmp_path)
    weights.write_bytes(b"\x01" * 64)
    assert directory_weights_sha256(tmp_path) != before


def test_scorer_changes_the_cell_but_not_the_text_key(tiny_llama: LoadedModel) -> None:
    one, two = _keys(_config(), tiny_llama, "scorer-a"), _keys(_config(), tiny_llama, "scorer-b")
    assert [g for g, _ in one] == [g for g, _ in two]  # the text can be reused
    assert {c for _, c in one}.isdisjoint(c for _, c in two)  # the row cannot


@pytest.mark.parametrize("ingredient", ["code", "data", "encoder", "library"])
def test_each_scorer_ingredient_changes_its_fingerprint(
    ingredient: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fingerprint_module.scorer_fingerprint.cache_clear()
    before = fingerprint_module.scorer_fingerprint()
    if ingredient == "code":
        extra = tmp_path / "feature.py"
        extra.write_text("WEIGHT = 2\n")
        sources = fingerprint_module.scorer_sources()
        monkeypatch.setattr(fingerprint_module, "scorer_sources", lambda: [*sources, extra])
        monkeypatch.setattr(fingerprint_module, "_BENCH", Path("/"))
    elif ingredient == "data":
        copy = tmp_path / "classifier.jsonl"
        original = fingerprint_module.packaged_path("classifier.jsonl")
        copy.write_text(original.read_text().replace("?", "?!", 1))
        real = fingerprint_module.packaged_path
        monkeypatch.setattr(
            fingerprint_module,
            "packaged_path",
            lambda name: copy if name == "classifier.jsonl" else real(name),
        )
    elif ingredient == "encoder":
        monkeypatch.setattr(fingerprint_module, "encoder_sha256", lambda: "0" * 64)
    else:
        real_version = fingerprint_module.metadata.version
        monkeypatch.setattr(
            fingerprint_module.metadata,
            "version",
            lambda name: "0.0.1" if name == "scikit-learn" else real_version(name),
        )
    fingerprint_module.scorer_fingerprint.cache_clear()
    try:
        assert fingerprint_module.scorer_fingerprint() != before
    finally:
        fingerprint_module.scorer_fingerprint.cache_clear()
