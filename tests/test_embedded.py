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


def test_perplexity_is_read_in_the_scenario_context(smollm: LoadedModel) -> None:
    """The same question is far less perplexing as the reply to its own scenario than to
    another scenario's prompt, and its words scrambled are far more perplexing: fluency is
    judged as a reply, not as a text alone."""
    dev = load_scenarios("dev")
    own, *others = (
        render_prompt(smollm, TASK.messages(Scenario.from_row(dev[i])), TASK.cue) for i in range(4)
    )
    assert "antibiotics" in own
    question = "Why can stopping the course early leave the toughest bacteria alive?"
    scrambled = "alive course the early bacteria toughest stopping Why leave can the?"
    in_own, shuffled, *elsewhere = perplexities(
        smollm, [own, own, *others], [question, scrambled] + [question] * len(others)
    )
    assert all(in_own * 2 < other for other in elsewhere), (in_own, elsewhere)
    assert in_own * 10 < shuffled, (in_own, shuffled)


def test_in_context_a_short_answer_beats_rambles_that_win_alone(smollm: LoadedModel) -> None:
    """A short, plain follow-up question is less perplexing than long rambles as the reply to
    its scenario, although scored alone (the old way) it is more perplexing than a ramble.
    (Per-token perplexity still favors predictable text: a rarer phrasing of a good question,
    as in the test above, scores about 53 here; the fluency cut only flags texts beyond the
    control's 95th percentile.)"""
    own = render_prompt(
        smollm, TASK.messages(Scenario.from_row(load_scenarios("dev")[0])), TASK.cue
    )
    short = "What happens to the bacteria if you stop taking antibiotics early?"
    rambles = [
        "Well, I think maybe it is about the antibiotics, or it could be about something else, "
        "like when people go to the shop on Tuesday and the weather changes, and my cousin once "
        "said that football matters more than homework anyway, so who knows what the doctor "
        "meant by any of it really?",
        "So basically there are many things to consider here and honestly it depends on a lot of "
        "factors that we could talk about for a long time, such as history, the economy, what "
        "your teacher said last year, and whether the question even makes sense in the first "
        "place, which is hard to say?",
        "Antibiotics are medicines, and medicines come in boxes, and boxes are made of cardboard "
        "which comes from trees, and trees grow in forests where animals live, and animals "
        "sometimes get sick too, so maybe they need antibiotics as well, but do they finish "
        "their course?",
    ]
    in_context = perplexities(smollm, [own] * 4, [short, *rambles])
    alone = perplexities(smollm, ["", ""], [short, rambles[0]])
    assert all(in_context[0] < ramble for ramble in in_context[1:]), in_context
    assert alone[0] > alone[1], alone


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
