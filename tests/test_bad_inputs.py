"""Bad input found by probing as a new user: each is one line on stderr, exit 2, no
traceback, and no file made or changed (a run that fails leaves no store behind)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main

RUN = ["run", "--model", "tiny-llama", "--method", "none", "--levels", "Remember", "--limit", "1"]
FAST = ["decoding.max_new_tokens=4"]


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args))


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output


def _scenario(number: int, **changes: object) -> dict:
    row = {
        "id": f"s{number}",
        "subject": "physics",
        "question": "Why is the sky blue?",
        "student_answer": "Because of the sea.",
        "answer_type": "wrong",
        "split": "dev",
    }
    return {**row, **changes}


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["decoding.temperature=.nan"], "temperature must be a finite number"),
        (["decoding.temperature=.inf"], "temperature must be a finite number"),
        (["decoding.top_p=.nan"], "top_p must be a finite number"),
        (["seeds=99999999999999999999999"], "a seed must fit in 64 bits"),
        (["--levels", ""], "give at least one level"),
        (["--levels", " , "], "give at least one level"),
    ],
)
def test_config_values_a_run_cannot_use(tmp_path: Path, overrides: list[str], message: str) -> None:
    store = tmp_path / "r.sqlite"
    args = ["run", "--model", "tiny-llama", "--method", "none", "--limit", "1", *FAST]
    result = _invoke(*args, "--store", str(store), *overrides)
    _one_line_error(result, message)
    assert not store.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"limit: 2\nlimit: 3\n", "duplicate key 'limit' at line 2"),
        (b"limit: 2 # caf\xe9\n", "not UTF-8 text (byte 14)"),
        (bytes(range(256)), "not UTF-8 text"),
    ],
)
def test_a_config_file_is_yaml_text_with_each_key_once(
    tmp_path: Path, content: bytes, message: str
) -> None:
    config = tmp_path / "c.yaml"
    config.write_bytes(content)
    result = _invoke("run", "--config", str(config), "--store", str(tmp_path / "r.sqlite"))
    _one_line_error(result, message)
    assert config.read_bytes() == content and not (tmp_path / "r.sqlite").exists()


def test_a_run_that_fails_after_opening_its_store_leaves_none(tmp_path: Path) -> None:
    """The layer is checked once the model is loaded, after the store was opened."""
    store = tmp_path / "r.sqlite"
    args = ["run", "--model", "tiny-llama", "--method", "caa", "--store", str(store)]
    _one_line_error(_invoke(*args, "hparams.caa.layer=99"), "layer 99 out of range")
    assert sorted(tmp_path.iterdir()) == []


def test_a_failed_run_leaves_an_existing_store_as_it_was(tmp_path: Path) -> None:
    store = tmp_path / "r.sqlite"
    assert _invoke(*RUN, "--store", str(store), *FAST).exit_code == 0
    before = hashlib.sha256(store.read_bytes()).hexdigest()
    args = ["run", "--model", "tiny-llama", "--method", "caa", "--store", str(store)]
    _one_line_error(_invoke(*args, "hparams.caa.layer=99"), "layer 99 out of range")
    assert hashlib.sha256(store.read_bytes()).hexdigest() == before


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([], "no scenarios"),
        ([None], "a JSON object expected, got NoneType"),
        ([_scenario(1), _scenario(1)], "id 's1' given twice"),
        ([_scenario(1, question=5)], "question must be a non-empty text, got 5"),
        ([_scenario(1, student_answer="  ")], "student_answer must be a non-empty text"),
        ([_scenario(1, split="Dev")], "split 'Dev' is not one of dev, test, exemplar"),
        ([_scenario(1, split="test")], "no scenarios of split 'dev'"),
    ],
)
def test_scenarios_a_run_cannot_use(tmp_path: Path, rows: list[object], message: str) -> None:
    scenarios = _jsonl(tmp_path / "sc.jsonl", rows)
    store = tmp_path / "r.sqlite"
    result = _invoke(*RUN, "--store", str(store), f"scenarios={scenarios}")
    _one_line_error(result, message)
    assert not store.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("id,text\n1,A?,extra\n", "in.csv:2: more fields than the header's"),
        ("id,text,level\n1,A?\n", "in.csv:2: fewer fields than the header's"),
        ("text,text\nA?,B?\n", "column(s) 'text' named twice in the header"),
    ],
)
def test_a_ragged_csv_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "in.csv"
    path.write_text(content, encoding="utf-8")
    _one_line_error(_invoke("score", str(path)), message)


def test_exemplars_of_text_and_level_alone_steer_few_shot(tmp_path: Path) -> None:
    """The README's exemplars CSV (no scenario columns): its shots show no scenario."""
    exemplars = tmp_path / "ex.csv"
    lines = ["text,level"] + [
        f"Question {i} at this level?,{level}"
        for level in ("Remember", "Understand", "Apply", "Analyze", "Evaluate", "Create")
        for i in range(4)  # few_shot's k=3 needs more than 3 per level
    ]
    exemplars.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = tmp_path / "r.sqlite"
    args = ["run", "--model", "tiny-llama", "--method", "few_shot", "--levels", "Remember"]
    result = _invoke(*args, "--limit", "1", "--store", str(store), f"exemplars={exemplars}", *FAST)
    assert result.exit_code == 0, result.output
    assert "wrote 1 new rows" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text,level\n   ,Remember\n", "ex.csv:2: empty text"),
        ("5\n", "a JSON object expected, got int"),
    ],
)
def test_exemplars_without_text_are_one_line(tmp_path: Path, content: str, message: str) -> None:
    exemplars = tmp_path / ("ex.csv" if content.startswith("text") else "ex.jsonl")
    exemplars.write_text(content, encoding="utf-8")
    store = tmp_path / "r.sqlite"
    result = _invoke(*RUN, "--store", str(store), f"exemplars={exemplars}")
    _one_line_error(result, message)
    assert not store.exists()


def test_an_annotation_whose_text_is_not_a_string_is_one_line(tmp_path: Path) -> None:
    """An empty text stays: a model can write one, and it is read as setting no task."""
    row = {
        "id": "a1",
        "scenario_id": "sc-001",
        "split": "dev",
        "model": "smollm2-135m",
        "task": "question",
        "method": "none",
        "target": "Remember",
        "text": 5,
        "label": {"level": "none", "leaks": False, "on_topic": True, "fluent": True},
    }
    annotations = _jsonl(tmp_path / "ann.jsonl", [row])
    result = _invoke("score", "agreement", "--annotations", str(annotations))
    _one_line_error(result, "annotation 1: text must be a string, got 5")


def _small_store(tmp_path: Path) -> Path:
    store = tmp_path / "r.sqlite"
    assert _invoke(*RUN, "--store", str(store), *FAST).exit_code == 0
    return store


def test_no_output_is_written_over_a_results_store(tmp_path: Path) -> None:
    store = _small_store(tmp_path)
    before = store.read_bytes()
    _one_line_error(_invoke("report", str(store), "--out", str(store)), "is a SQLite database")
    assert store.read_bytes() == before


def test_an_output_folder_that_cannot_be_written_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    def refused(*_args: object, **_kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    store = _small_store(tmp_path)
    monkeypatch.setattr(tempfile, "mkstemp", refused)
    out = tmp_path / "page.md"
    _one_line_error(_invoke("report", str(store), "--out", str(out)), "Permission denied")
    assert not out.exists()


def test_a_damaged_row_is_one_line_to_a_reader(tmp_path: Path) -> None:
    store = _small_store(tmp_path)
    with sqlite3.connect(store) as db:
        db.execute("UPDATE generations SET hparams = 'not json'")
    db.close()
    before = store.read_bytes()
    _one_line_error(_invoke("report", str(store)), "hparams of row")
    assert store.read_bytes() == before


def test_a_store_lacking_a_column_is_refused_on_open(tmp_path: Path) -> None:
    store = _small_store(tmp_path)
    with sqlite3.connect(store) as db:
        db.execute("ALTER TABLE generations DROP COLUMN decoding")
    db.close()
    for sidecar in (Path(f"{store}-wal"), Path(f"{store}-shm")):
        sidecar.unlink(missing_ok=True)
    before = store.read_bytes()
    result = _invoke(*RUN, "--levels", "Create", "--store", str(store), *FAST)
    _one_line_error(result, "lack column(s) decoding")
    assert store.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]


def test_an_export_row_of_the_wrong_type_is_not_imported(tmp_path: Path) -> None:
    """A self-consistent export (its header matches its rows) whose seed is a string."""
    from dataclasses import replace

    from bench.report.export import load_rows, write_export

    rows = load_rows(_small_store(tmp_path))
    export = tmp_path / "bad.jsonl.gz"
    write_export([replace(rows[0], seed="abc")], export, source="r.sqlite")
    target = tmp_path / "new.sqlite"
    result = _invoke("store", "import", str(export), "--store", str(target))
    _one_line_error(result, "seed must be an integer, got 'abc'")
    assert not target.exists()


def test_exports_that_disagree_on_a_row_are_not_imported(tmp_path: Path) -> None:
    from dataclasses import replace

    from bench.report.export import load_rows, write_export

    rows = load_rows(_small_store(tmp_path))
    first, second = tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"
    write_export(rows[:1], first, source="r.sqlite")
    write_export([replace(rows[0], text="Another text?")], second, source="r.sqlite")
    target = tmp_path / "new.sqlite"
    result = _invoke("store", "import", str(first), str(second), "--store", str(target))
    _one_line_error(result, "twice, with other contents; nothing imported")
    with sqlite3.connect(target) as db:
        assert db.execute("SELECT count(*) FROM generations").fetchone() == (0,)
    db.close()
