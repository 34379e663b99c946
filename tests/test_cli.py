"""`bench run`: resumes, and user mistakes give one line on stderr, exit 2, store untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
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


def test_an_old_store_is_a_one_line_error(tmp_path: Path) -> None:
    import sqlite3

    store = tmp_path / "old.sqlite"
    with sqlite3.connect(store) as db:
        db.execute("CREATE TABLE generations (cell_hash TEXT, scenario_id TEXT)")
    code, _, err = _run("--model", "tiny-llama", "--store", str(store), *FAST)
    assert code == 2 and "written by an older bench" in err and err.count("\n") == 1
