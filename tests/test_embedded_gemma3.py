"""The second embedded family (Gemma 3 270M base, from its chunked PyPI wheels), end to end."""

from __future__ import annotations

import pytest

from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import TASKS
from bench.models.generation import Decoding, generate, render_prompt
from bench.models.loading import LoadedModel, converted_dir, load_model
from bench.models.registry import REGISTRY

pytestmark = pytest.mark.embedded
TASK = TASKS["question"]


@pytest.fixture(scope="module")
def gemma() -> LoadedModel:
    return load_model("gemma3-270m")


def test_assembles_checks_and_caches_the_gguf(gemma: LoadedModel) -> None:
    expected = __import__(str(REGISTRY["gemma3-270m"].package)).EXPECTED_SHA256
    assert gemma.weights_sha256 == expected
    assert (converted_dir(REGISTRY["gemma3-270m"], expected) / "model.safetensors").is_file()
    assert gemma.model.config.model_type == "gemma3_text"
    assert gemma.adapter.n_layers == 18 and gemma.adapter.query_width == 1024


def test_the_base_model_writes_one_question_after_the_transcript_cue(gemma: LoadedModel) -> None:
    dev = load_scenarios("dev")
    scenarios = [Scenario.from_row(dev[i]) for i in range(4)]
    prompt = render_prompt(gemma, TASK.messages(scenarios[0]), TASK.cue)
    assert prompt.startswith("<bos>System: ") and prompt.endswith("\n\nAssistant: " + TASK.cue)
    prompts = [TASK.messages(s) for s in scenarios]
    outputs = generate(gemma, prompts, Decoding(max_new_tokens=48, greedy=True), cue=TASK.cue,
                       stop=TASK.stop)  # fmt: skip
    assert all(o.finished for o in outputs)  # the stop rule ended every row
    questions = [o.text for o in outputs if o.text.endswith("?")]
    assert len(questions) >= 3, [o.text for o in outputs]  # greedy: mostly real questions
    for text in questions:
        assert "\n" not in text and len(text.split()) >= 4
