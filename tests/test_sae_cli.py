"""`bench sae`: collect -> train -> align -> eval end to end on a tiny model, and one-line
errors for user mistakes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main


def _sae(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["sae", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("sae-cli")
    paths = {name: root / name for name in ("store", "stage1", "aligned")}
    steps = [
        (
            "collect", "--model", "tiny-llama", "--layer", "1", "--tokens", "6000",
            "--sources", "project", "--out", str(paths["store"]),
        ),
        (
            "train", str(paths["store"]), "--out", str(paths["stage1"]),
            "expansion=2", "k=4", "epochs=1", "batch_size=256", "eval_every=5",
            "eval_tokens=512", "buffer_tokens=4096",
        ),
        (
            "align", str(paths["stage1"]), "--out", str(paths["aligned"]),
            "--validation-every", "2", "steps=4", "batch_size=256", "texts_per_step=8",
            "eval_every=2", "eval_tokens=512",
        ),
    ]  # fmt: skip
    for args in steps:
        code, out, err = _sae(*args)
        assert code == 0, (args[0], out, err)
    return paths


def test_the_aligned_sae_is_evaluated_on_scenarios_it_never_saw(pipeline: dict[str, Path]) -> None:
    log = json.loads((pipeline["aligned"] / "training_log.json").read_text())
    assert log["binding_read_on"] == "validation"
    config = json.loads((pipeline["aligned"] / "cfg.json").read_text())["bench"]
    aligned = config["metadata"]["align"]
    heldout, validation = set(aligned["heldout_scenarios"]), set(aligned["validation_scenarios"])
    assert heldout and validation and not heldout & validation
    assert len(config["concept_slots"]) == 6

    out = pipeline["aligned"].parent / "eval.json"
    code, stdout, err = _sae(
        "eval", str(pipeline["aligned"]), "--limit", "2", "--json", "--out", str(out)
    )
    assert code == 0, err
    report = json.loads(out.read_text())
    assert report == json.loads(stdout)
    assert 0.0 <= report["binding_accuracy"] <= 1.0 and report["binding_texts"] > 0
    stage1 = report["stage1"]["explained_variance"]
    assert report["explained_variance_drop"] == pytest.approx(stage1 - report["explained_variance"])
    assert report["splice_documents"] == 2


def test_splice_metrics_read_documents_from_the_first_to_the_last(
    pipeline: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench.methods import sae_workflows
    from bench.sae.activations import evenly_spaced, heldout_documents

    read: list[list[str]] = []
    real = sae_workflows.evaluate

    def spy(lm, sae, activations, docs):
        read.append([d.id for d in docs])
        return real(lm, sae, activations, docs)

    monkeypatch.setattr(sae_workflows, "evaluate", spy)
    docs = heldout_documents(pipeline["store"])
    assert len(docs) >= 4
    sae_workflows.evaluate_sae(str(pipeline["stage1"]), None, 3)
    assert read == [[docs[i].id for i in evenly_spaced(len(docs), 3)]]
    assert read[0][0] == docs[0].id and read[0][-1] == docs[-1].id


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("train", "{store}", "--out", "{root}/x", "colour=red"), "unknown key(s) colour"),
        (("align", "{stage1}", "--out", "{stage1}"), "exists; choose a new --out"),
        (("align", "{stage1}", "--out", "{root}/y", "pooling=median"), "pooling must be"),
        (("eval", "{root}/missing"), "missing"),
    ],
)
def test_user_mistakes_are_one_line_errors(
    pipeline: dict[str, Path], args: tuple[str, ...], message: str
) -> None:
    names = {"store": pipeline["store"], "stage1": pipeline["stage1"]}
    filled = [a.format(root=pipeline["store"].parent, **names) for a in args]
    code, _, err = _sae(*filled)
    assert code != 0
    assert message in err and len(err.strip().splitlines()) == 1, err
