"""The real embedded model (SmolLM2-135M-Instruct from its PyPI wheel), end to end."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import TASKS
from bench.models.generation import Decoding, generate, render_prompt
from bench.models.loading import LoadedModel, converted_dir, load_model
from bench.models.registry import REGISTRY
from bench.scoring.fluency import perplexities

pytestmark = pytest.mark.embedded
TASK = TASKS["question"]


@pytest.fixture(scope="module")
def smollm() -> LoadedModel:
    return load_model("smollm2-135m")


def test_loads_from_the_safetensors_cache(smollm: LoadedModel) -> None:
    cached = converted_dir(REGISTRY["smollm2-135m"], smollm.weights_sha256)
    assert (cached / "model.safetensors").is_file()
    assert smollm.model.config.model_type == "llama"
    assert smollm.adapter.n_layers == 30 and smollm.adapter.query_width == 576


def test_generates_one_question_reproducibly(smollm: LoadedModel) -> None:
    scenario = Scenario.from_row(load_scenarios("dev")[0])
    prompts = [TASK.messages(scenario)] * 2
    decoding = Decoding(max_new_tokens=48)
    first = generate(smollm, prompts, decoding, seeds=[7, 8], cue=TASK.cue, stop=TASK.stop)
    again = generate(smollm, prompts, decoding, seeds=[7, 8], cue=TASK.cue, stop=TASK.stop)
    assert [g.text for g in first] == [g.text for g in again]
    for g in first:  # one line, at most one question: the stop rule ended it
        assert len(g.text.split()) >= 3 and "\n" not in g.text and g.text.count("?") <= 1


def test_perplexity_in_context_prefers_a_short_answer_to_a_ramble(smollm: LoadedModel) -> None:
    """A short, finished question is not more perplexing than a long ramble in the same
    context (scored alone, without the prompt, short texts looked disfluent)."""
    scenario = Scenario.from_row(load_scenarios("dev")[0])  # antibiotics
    context = render_prompt(smollm, TASK.messages(scenario), TASK.cue)
    short = "Why can stopping the course early leave the toughest bacteria alive?"
    ramble = (
        "Well so the antibiotics and the body and the immune and then the course is the course "
        "of the thing that the doctor says and the bacteria are the bacteria and the resistance "
        "is like when you, um, the body gets used and then the bacteria and the course again"
    )
    short_ppl, ramble_ppl = perplexities(smollm, [context, context], [short, ramble])
    assert short_ppl <= ramble_ppl, (short_ppl, ramble_ppl)


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
