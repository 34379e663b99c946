"""`bench perf --arch`: the paper architectures' whole method pipeline on random weights (here
on tiny configs of the same families, which take seconds; `nox -s fullsize` runs the real
sizes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.models import fullsize
from bench.models.tiny import TINY_CONFIGS
from bench.perf import fullsize as measure

METHODS = {"prompting", "caa", "actadd", "query_sae", "align_sae"}


@pytest.fixture
def tiny_archs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny Phi-3 and Mistral configs under the paper architectures' names."""
    monkeypatch.setattr(
        fullsize,
        "FULLSIZE_CONFIGS",
        {"phi-3-mini": TINY_CONFIGS["tiny-phi3"], "mistral-7b": TINY_CONFIGS["tiny-mistral"]},
    )
    monkeypatch.setattr(measure, "FULLSIZE_CONFIGS", fullsize.FULLSIZE_CONFIGS)


@pytest.mark.parametrize("arch", ["phi-3-mini", "mistral-7b"])
def test_every_method_runs_and_the_checks_hold(tiny_archs: None, arch: str) -> None:
    report = measure.measure_fullsize(arch, dtype="float32", batch=3)
    assert set(report["methods"]) == METHODS
    assert report["checks"] == {
        "sites_have_documented_shapes": True,
        **{f"{m}_at_0_is_unsteered": True for m in METHODS - {"prompting"}},
    }
    names = [step["step"] for step in report["steps"]]
    for step in ("build", "plain", "query_sae collect", "query_sae train", "align_sae align"):
        assert step in names
    assert all(step["seconds"] >= 0 and step["peak_bytes"] > 0 for step in report["steps"])
    assert len(report["methods"]["query_sae"]["attention_kl"]) == 3


def test_a_failed_check_makes_perf_exit_1_after_writing_its_json(
    tiny_archs: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = measure.measure_fullsize

    def broken(*args: object, **kwargs: object) -> dict:
        report = real(*args, **kwargs)
        report["checks"]["caa_at_0_is_unsteered"] = False
        return report

    monkeypatch.setattr(measure, "measure_fullsize", broken)
    out = tmp_path / "phi.json"
    result = CliRunner().invoke(
        main,
        ["perf", "--arch", "phi-3-mini", "--random-weights", "--dtype", "float32",
         "--out", str(out), "--json"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "checks failed: caa_at_0_is_unsteered" in result.output
    assert json.loads(out.read_text())["checks"]["caa_at_0_is_unsteered"] is False
