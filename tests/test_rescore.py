"""`bench store rescore`: a scorer change rescores a store's texts without building methods,
the same scores `bench run` would give, under keys a later `bench run` finds done."""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import bench.rescore
import bench.runner
from bench.cli import main
from bench.store import GenerationRow, ResultsStore

GRID = ["--model", "tiny-llama", "--method", "none", "--method", "caa", "--levels", "Apply"]
GRID += ["--levels", "Create", "--limit", "2"]
FAST = ["decoding.max_new_tokens=4", "batch_tokens=600", "hparams.caa.layer=1"]
SAME_RUN = ["models=[tiny-llama]", *FAST]
"""The rescore's config: what keys the runs (model, split, task, decoding, data), not the grid."""
ROWS = 2 * 2 * 2  # methods x levels x scenarios


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout + result.stderr


def _rows(store: Path) -> list[GenerationRow]:
    with ResultsStore(store) as opened:
        return list(opened.rows())


def _new_scorer(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (bench.runner, bench.rescore):
        monkeypatch.setattr(module, "scorer_fingerprint", lambda: "another-scorer")


def _same_scores(a: dict[str, Any], b: dict[str, Any]) -> bool:
    numbers = {k for k, v in a.items() if isinstance(v, float)}
    close = all(math.isclose(a[k], b[k], rel_tol=1e-6) or a[k] == b[k] for k in numbers)
    return a.keys() == b.keys() and close and all(a[k] == b[k] for k in a.keys() - numbers)


@pytest.fixture
def made(tmp_path: Path) -> Path:
    store = tmp_path / "r.sqlite"
    code, out = _cli("run", *GRID, "--store", str(store), *FAST)
    assert code == 0, out
    return store


def test_rescore_needs_no_method_and_a_later_run_finds_the_rows_done(
    made: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _rows(made)
    _new_scorer(monkeypatch)
    real_method_class = bench.runner.method_class

    def no_methods(name: str) -> None:
        raise AssertionError(f"rescoring built method {name}")

    monkeypatch.setattr(bench.runner, "method_class", no_methods)
    code, out = _cli("store", "rescore", "--store", str(made), *SAME_RUN)
    assert code == 0, out
    assert f"rescored {ROWS} rows under scorer another-scorer; 0 were already; 0 rows" in out
    after = [row for row in _rows(made) if row.scorer == "another-scorer"]
    assert len(after) == ROWS and len(_rows(made)) == 2 * ROWS
    old = {(row.gen_key, row.scenario_id): row for row in before}
    for row in after:
        was = old[(row.gen_key, row.scenario_id)]
        assert (row.text, row.method, row.level, row.diagnostics) == (
            was.text,
            was.method,
            was.level,
            was.diagnostics,
        )
        assert row.cell_hash == bench.runner.stable_hash(
            {"gen_key": row.gen_key, "scorer": "another-scorer"}
        )
    code, out = _cli("store", "rescore", "--store", str(made), *SAME_RUN)
    assert code == 0 and f"rescored 0 rows under scorer another-scorer; {ROWS} were" in out

    monkeypatch.setattr(bench.runner, "method_class", real_method_class)

    def no_generation(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a rescored store has nothing left to make")

    monkeypatch.setattr(bench.runner, "generate", no_generation)
    code, out = _cli("run", *GRID, "--store", str(made), *FAST)
    assert code == 0, out
    assert f"{ROWS} rows were already done; wrote 0 new rows" in out


def test_rescore_gives_the_scores_and_keys_a_rescoring_run_gives(
    made: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sqlite3.connect(made) as db:  # texts made by an older commit under another config
        db.execute("UPDATE generations SET git_commit = 'made-by', config_hash = 'made-with'")
    db.close()
    by_run = made.with_name("by-run.sqlite")
    shutil.copy(made, by_run)
    _new_scorer(monkeypatch)
    assert _cli("store", "rescore", "--store", str(made), *SAME_RUN)[0] == 0
    assert _cli("run", *GRID, "--store", str(by_run), *FAST)[0] == 0
    ours = {(r.cell_hash, r.scenario_id): r for r in _rows(made) if r.scorer == "another-scorer"}
    theirs = {
        (r.cell_hash, r.scenario_id): r for r in _rows(by_run) if r.scorer == "another-scorer"
    }
    assert ours.keys() == theirs.keys() and len(ours) == ROWS
    for key, row in ours.items():
        assert row.run_key == theirs[key].run_key
        assert (row.git_commit, row.config_hash) == ("made-by", "made-with")
        assert (theirs[key].git_commit, theirs[key].config_hash) == ("made-by", "made-with")
        assert _same_scores(row.scores, theirs[key].scores), key


def test_rows_other_inputs_made_are_left_alone(made: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _new_scorer(monkeypatch)
    other = ["models=[tiny-llama]", "decoding.max_new_tokens=5", "batch_tokens=600"]
    code, out = _cli("store", "rescore", "--store", str(made), *other)
    assert code == 0, out
    assert f"rescored 0 rows under scorer another-scorer; 0 were already; {ROWS} rows" in out
    assert len(_rows(made)) == ROWS


def test_a_missing_store_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    code, out = _cli("store", "rescore", "--store", str(missing), *SAME_RUN)
    assert code == 2 and "no results store to rescore" in out and out.count("\n") == 1
    assert not missing.exists()
