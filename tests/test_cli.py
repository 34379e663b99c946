"""`bench run`: resumes, and user mistakes give one line on stderr, exit 2, store untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.store import ResultsStore

FAST = ["decoding.max_new_tokens=4", "batch_size=3"]


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
    before = store.read_bytes()
    code, _, err = _run("--config", str(config), "--store", str(store))
    assert code == 2 and message in err and err.count("\n") == 1
    with ResultsStore(store) as opened:
        assert opened.count() == 12
    assert before  # the store existed before and still holds exactly its rows


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
    assert "| tiny-llama | prompting" in page and "target \\ predicted" in page


def test_report_on_a_missing_store_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["report", str(tmp_path / "none.sqlite")])
    assert result.exit_code == 2 and "store not found" in result.stderr
