"""The real embedded model (SmolLM2-135M-Instruct from its PyPI wheel), end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data.prompts import feedback_messages
from bench.data.scenarios import Scenario, load_scenarios
from bench.models.generation import Decoding, generate
from bench.models.loading import LoadedModel, converted_dir, load_model
from bench.models.registry import REGISTRY

pytestmark = pytest.mark.embedded


@pytest.fixture(scope="module")
def smollm() -> LoadedModel:
    return load_model("smollm2-135m")


def test_loads_from_the_safetensors_cache(smollm: LoadedModel) -> None:
    cached = converted_dir(REGISTRY["smollm2-135m"], smollm.weights_sha256)
    assert (cached / "model.safetensors").is_file()
    assert smollm.model.config.model_type == "llama"
    assert smollm.adapter.n_layers == 30 and smollm.adapter.query_width == 576


def test_generates_nonempty_feedback_reproducibly(smollm: LoadedModel) -> None:
    scenario = Scenario.from_row(load_scenarios("dev")[0])
    prompts = [feedback_messages(scenario)] * 2
    decoding = Decoding(max_new_tokens=32)
    first = generate(smollm, prompts, decoding, seeds=[7, 8])
    again = generate(smollm, prompts, decoding, seeds=[7, 8])
    assert all(len(g.text.split()) >= 3 for g in first)
    assert [g.text for g in first] == [g.text for g in again]


def test_bench_run_on_the_embedded_model(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bench.cli import main

    args = [
        "run",
        "--model",
        "smollm2-135m",
        "--method",
        "prompting",
        "--limit",
        "2",
        "--levels",
        "Remember,Create",
        "--store",
        str(tmp_path / "r.sqlite"),
        "decoding.max_new_tokens=8",
    ]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0 and "wrote 4 new rows" in first.stdout
    second = CliRunner().invoke(main, args)
    assert "4 rows were already done; wrote 0 new rows" in second.stdout
