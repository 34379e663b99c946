"""`bench run`: resumes, and user mistakes give one line on stderr, exit 2, store untouched."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.criteria import SCORE_KEYS
from bench.errors import DataError
from bench.store import ResultsStore

FAST = ["decoding.max_new_tokens=4", "batch_tokens=600"]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["run", *args])
    return result.exit_code, result.stdout, result.stderr


def test_run_writes_rows_then_resumes(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    args = ["--model", "tiny-llama", "--method", "prompting", "--limit", "4", "--store", str(store)]
    code, out, _ = _run(*args, *FAST)
    assert code == 0, out
    assert "0 rows were already done; wrote 24 new rows" in out
    assert "Remember" in out and "Create" in out
    code, out, _ = _run(*args, *FAST)
    assert code == 0
    assert "24 rows were already done; wrote 0 new rows" in out
    with ResultsStore(store) as opened:
        assert opened.count() == 24
        assert all(row.scores.keys() >= SCORE_KEYS for row in opened.rows())


def test_run_extends_a_smaller_run(tmp_path: Path) -> None:
    store = str(tmp_path / "r.sqlite")
    _run(
        "--model",
        "tiny-llama",
        "--method",
        "none",
        "--levels",
        "Apply",
        "--limit",
        "2",
        "--store",
        store,
        *FAST,
    )
    code, out, _ = _run(
        "--model",
        "tiny-llama",
        "--method",
        "none",
        "--levels",
        "Apply",
        "--limit",
        "3",
        "--store",
        store,
        *FAST,
    )
    assert code == 0
    assert "2 rows were already done; wrote 1 new rows" in out


def test_rows_carry_provenance(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    _run(
        "--model",
        "tiny-gpt2",
        "--method",
        "none",
        "--levels",
        "Apply",
        "--limit",
        "1",
        "--store",
        str(store),
        *FAST,
    )
    with ResultsStore(store) as opened:
        (row,) = list(opened.rows())
    assert row.model == "tiny-gpt2" and row.method == "none" and row.level == "Apply"
    assert len(row.weights_sha256) == 64 and row.git_commit and row.config_hash
    assert row.versions["torch"] and row.decoding["max_new_tokens"] == 4
    assert row.prompt[-1]["role"] == "user"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "no-such-model"], "unknown model 'no-such-model'"),
        (["--model", "tiny-llama", "--method", "nope"], "unknown method 'nope'"),
        (["--model", "tiny-llama", "--levels", "Memorize"], "unknown Bloom level 'Memorize'"),
        (["--model", "tiny-llama", "--config", "missing.yaml"], "config file not found"),
        (["--model", "tiny-llama", "batch_size"], "not of the form key=value"),
        (["--model", "tiny-llama", "colour=blue"], "unknown key(s) colour"),
        (["--model", "tiny-llama", "--limit", "0"], "limit must be a positive"),
        (["--model", "someorg/absent-model"], "is not on this machine"),
        (["--model", "tiny-llama", "hparams.prompting.tone=warm"], "no hyperparameter(s) tone"),
        (["--model", "tiny-llama", "hparams.prompting.wording=loud"], "wording must be one of"),
        (["--model", "tiny-llama", "hparams.nope.x=1"], "unknown method 'nope'"),
        (["--model", "tiny-llama", "task=essay"], "unknown task 'essay'"),
        (["--model", "tiny-llama", "task.colour=red"], "task: unknown key(s) colour"),
        (["--model", "tiny-llama", "split=train"], "split must be one of"),
        (["--model", "tiny-llama", "levels=[1]"], "levels must be a list of strings, got [1]"),
        (["--model", "tiny-llama", "limit=2.5"], "limit must be an integer or null, got 2.5"),
        (["--model", "tiny-llama", "seeds=[a]"], "seeds must be a list of integers"),
        (["--model", "tiny-llama", "batch_tokens=true"], "batch_tokens must be an integer"),
        (["--model", "tiny-llama", "reuse_prefixes=1"], "reuse_prefixes must be true or false"),
        (["--model", "tiny-llama", "decoding.greedy=maybe"], "greedy must be true or false"),
        (["--model", "tiny-llama", "decoding.temperature=abc"], "temperature must be a number"),
        (["--model", "tiny-llama", "decoding.max_new_tokens=8.5"], "max_new_tokens must be an"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    store = tmp_path / "r.sqlite"
    code, out, err = _run(*args, "--store", str(store))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert "Traceback" not in out + err
    assert not store.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: [tiny-llama\nmethods: none", "malformed YAML at line"),
        ("- just\n- a list", "must be a YAML mapping"),
        ("decoding: {temperature: 0}", "temperature must be positive"),
    ],
)
def test_malformed_config_is_a_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    store = tmp_path / "r.sqlite"
    _run("--model", "tiny-llama", "--limit", "1", "--store", str(store), *FAST)
    with ResultsStore(store) as opened:
        before = [(r.cell_hash, r.scenario_id, r.text) for r in opened.rows()]
    code, _, err = _run("--config", str(config), "--store", str(store))
    assert code == 2 and message in err and err.count("\n") == 1
    with ResultsStore(store) as opened:
        assert [(r.cell_hash, r.scenario_id, r.text) for r in opened.rows()] == before
    assert len(before) == 12


def test_config_file_runs(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "models: [tiny-qwen2]\nmethods: [none]\nlevels: [Analyze]\nlimit: 2\n"
        f"store: {tmp_path / 'c.sqlite'}\ndecoding: {{max_new_tokens: 3, greedy: true}}\n"
    )
    code, out, _ = _run("--config", str(config))
    assert code == 0 and "wrote 2 new rows" in out


def test_models_lists_the_registry() -> None:
    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    for alias in ("smollm2-135m", "phi-3-mini", "mistral-7b", "tiny-phi3"):
        assert alias in result.stdout


def test_report_writes_a_results_page(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    _run("--model", "tiny-llama", "--levels", "Apply", "--limit", "2", "--store", str(store), *FAST)
    out = tmp_path / "page.md"
    result = CliRunner().invoke(
        main, ["report", str(store), "--out", str(out), "--how", "Made by `bench run`."]
    )
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert "Made by `bench run`." in page and "git commit(s)" in page and "config hash(es)" in page
    assert "| prompting | wording=named" in page and "target \\ read" in page
    assert "### Paired differences" in page and "Δ success vs control" in page


def test_report_on_a_missing_store_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2 and "store not found" in result.stderr


def test_sweeps_expand_into_cells_and_resume(tmp_path: Path) -> None:
    store = str(tmp_path / "r.sqlite")
    args = [
        "--model",
        "tiny-llama",
        "--method",
        "prompting",
        "--levels",
        "Apply",
        "--limit",
        "2",
        "--store",
        store,
        "hparams.prompting.wording=[named, described]",
        *FAST,
    ]
    code, out, _ = _run(*args)
    assert code == 0, out
    assert "wrote 4 new rows" in out and "wording=described" in out and "wording=named" in out
    code, out, _ = _run(*args)
    assert "4 rows were already done; wrote 0 new rows" in out


def test_a_changed_scorer_rescores_stored_texts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same texts, new scorer: rows are written anew from the stored texts, not regenerated."""
    import bench.runner

    store = str(tmp_path / "r.sqlite")
    args = [
        "--model",
        "tiny-llama",
        "--method",
        "none",
        "--levels",
        "Apply",
        "--limit",
        "2",
        "--store",
        store,
        *FAST,
    ]
    _run(*args)
    monkeypatch.setattr(bench.runner, "scorer_fingerprint", lambda: "another-scorer")
    monkeypatch.setattr(bench.runner, "git_commit", lambda: "a-later-commit")

    def no_generation(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("texts must be reused, not generated again")

    monkeypatch.setattr(bench.runner, "generate", no_generation)
    code, out, _ = _run(*args)
    assert code == 0, out
    assert "wrote 2 new rows (2 of them rescored texts)" in out
    with ResultsStore(store) as opened:
        rows = list(opened.rows())
    assert len(rows) == 4 and len({r.text for r in rows}) <= 2
    assert {r.scorer for r in rows} >= {"another-scorer"}
    assert "a-later-commit" not in {r.git_commit for r in rows}  # the text's commit stays


def test_an_old_store_is_a_one_line_error(tmp_path: Path) -> None:
    store = tmp_path / "old.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE generations (cell_hash TEXT, scenario_id TEXT)")
    code, _, err = _run("--model", "tiny-llama", "--store", str(store), *FAST)
    assert code == 2 and "written by an older bench" in err and err.count("\n") == 1


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _foreign_database(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE photos (id INTEGER)")
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_text("not a database"), "not a results store"),
        (_foreign_database, "another application's SQLite database"),
        (lambda p: p.mkdir(), "is a directory"),
    ],
)
@pytest.mark.parametrize("command", ["run", "report"])
def test_a_store_that_is_not_ours_is_one_line_and_left_as_it_was(
    tmp_path: Path, make, message: str, command: str
) -> None:
    store = tmp_path / "r.sqlite"
    make(store)
    before = _files(tmp_path)
    if command == "run":
        args = ["run", "--model", "tiny-llama", "--limit", "1", "--store", str(store), *FAST]
    else:
        args = ["report", str(store)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert _files(tmp_path) == before


def test_a_store_in_use_is_one_line_before_any_work(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    _run("--model", "tiny-llama", "--method", "none", "--limit", "1", "--store", str(store), *FAST)
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        code, _, err = _run(
            "--model",
            "tiny-llama",
            "--limit",
            "2",
            "--store",
            str(store),
            "store_timeout_s=0.2",
            *FAST,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert code == 2 and "is in use by another process" in err and err.count("\n") == 1
    with ResultsStore(store, read_only=True) as opened:
        assert opened.count() == 6


def test_rows_another_live_run_claimed_are_left_to_it(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    args = ["--model", "tiny-llama", "--method", "none", "--levels", "Apply", "--limit", "3"]
    _run(*args[:-1], "1", "--store", str(store), *FAST)
    with ResultsStore(store, read_only=True) as opened:
        cell = next(opened.rows()).cell_hash
    holder = sqlite3.connect(store)
    owner = f"{socket.gethostname()}:{os.getppid()}:other"
    holder.execute("INSERT INTO claims VALUES (?, 'sc-003', ?, ?)", (cell, owner, time.time()))
    holder.commit()
    code, out, _ = _run(*args, "--store", str(store), *FAST)
    assert code == 0 and "wrote 1 new rows" in out and "1 rows were left to another run" in out
    holder.execute("DELETE FROM claims")
    holder.commit()
    holder.close()
    code, out, _ = _run(*args, "--store", str(store), *FAST)
    assert "2 rows were already done; wrote 1 new rows" in out


def _bench(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "bench", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_runs_on_one_store_make_each_row_once(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    args = ["run", "--model", "tiny-llama", "--method", "none", "--method", "prompting"]
    args += ["--limit", "6", "--store", str(store), "decoding.max_new_tokens=4", "batch_tokens=200"]
    runs = [_bench(*args) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    counts = []
    for out in outputs:
        done, written = map(
            int, re.search(r"(\d+) rows were already done; wrote (\d+)", out).groups()
        )
        left = re.search(r"(\d+) rows were left to another run", out)
        counts.append((done, written, int(left.group(1)) if left else 0))
    assert sum(written for _, written, _ in counts) == 72  # 2 methods x 6 levels x 6 scenarios
    assert all(done + written + left == 72 for done, written, left in counts)
    with ResultsStore(store, read_only=True) as opened:
        assert opened.count() == 72


def test_a_run_killed_mid_way_then_resumed_equals_one_uninterrupted_run(tmp_path: Path) -> None:
    args = ["run", "--model", "tiny-llama", "--method", "none", "--limit", "8", "--greedy"]
    args += ["decoding.max_new_tokens=6", "batch_tokens=150"]
    whole, killed = tmp_path / "whole.sqlite", tmp_path / "killed.sqlite"
    assert _bench(*args, "--store", str(whole)).wait(timeout=600) == 0
    run = _bench(*args, "--store", str(killed))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill once some batches are stored
        try:
            with ResultsStore(killed, read_only=True) as opened:
                if opened.count() >= 6:
                    break
        except DataError:  # not made yet, or made but its schema not yet written
            pass
        time.sleep(0.05)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert _bench(*args, "--store", str(killed)).wait(timeout=600) == 0

    def rows(path: Path) -> list[tuple]:
        with ResultsStore(path, read_only=True) as opened:
            return sorted(
                (r.cell_hash, r.scenario_id, r.text, json.dumps(r.scores)) for r in opened.rows()
            )

    assert len(rows(whole)) == 48 and rows(killed) == rows(whole)
