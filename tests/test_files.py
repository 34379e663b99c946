"""Users' files: a named encoding, undecodable bytes as one line that says where, long fields,
empty texts reported and never scored, output folders made or refused in one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.data.annotations import load_annotations
from bench.data.files import read_csv
from bench.data.roles import load_exemplars
from bench.errors import DataError


def _score(*args: str):
    return CliRunner().invoke(main, ["score", *args])


def _latin1_csv(path: Path) -> None:
    path.write_bytes("id,body\n1,Qu'est-ce qu'un caf\xe9 ?\n".encode("latin-1"))


def _one_line_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_a_csv_that_is_not_utf8_is_one_line_until_its_encoding_is_given(tmp_path: Path) -> None:
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    _latin1_csv(source)
    result = _score(str(source), "--text-column", "body", "--out", str(out))
    _one_line_error(result, "in.csv:2: byte 0xe9 is not utf-8 text")
    assert "--encoding" in result.stderr and not out.exists()
    _one_line_error(
        _score(str(source), "--text-column", "body", "--encoding", "klingon", "--out", str(out)),
        "unknown text encoding 'klingon'",
    )
    result = _score(
        str(source), "--text-column", "body", "--encoding", "latin-1", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    (row,) = list(csv.DictReader(out.open(encoding="utf-8")))
    assert row["body"] == "Qu'est-ce qu'un café ?" and row["status"] == "scored"


def test_empty_texts_are_reported_and_never_given_a_level(tmp_path: Path) -> None:
    source, out = tmp_path / "in.csv", tmp_path / "out.csv"
    source.write_text('id,body\n1,Why does ice float?\n2,\n3,"   "\n', encoding="utf-8")
    result = _score(str(source), "--text-column", "body", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "2 empty text(s) not scored (lines 3, 4)" in result.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["status"] for r in rows] == ["scored"] + ["empty text: not scored"] * 2
    assert rows[0]["pred_level"] and rows[1]["pred_level"] == rows[2]["pred_level"] == ""
    assert json.loads(Path(f"{out}.json").read_text())["empty_texts"] == [3, 4]


def test_output_folders_are_made_or_refused_in_one_line(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,body\n1,Why does ice float?\n", encoding="utf-8")
    out = tmp_path / "new" / "deeper" / "out.csv"
    assert _score(str(source), "--text-column", "body", "--out", str(out)).exit_code == 0
    assert out.is_file()
    (tmp_path / "plain").write_text("x")
    blocked = tmp_path / "plain" / "out.csv"
    _one_line_error(
        _score(str(source), "--text-column", "body", "--out", str(blocked)),
        "a file is in the way",
    )


def test_a_field_longer_than_the_csv_modules_default_limit_reads(tmp_path: Path) -> None:
    source = tmp_path / "long.csv"
    text = "Why? " * 60_000  # 300 kB, over csv's default 128 KiB field limit
    source.write_text(f'text,level\n"{text}",Apply\n', encoding="utf-8")
    columns, rows = read_csv(source)
    assert columns == ["text", "level"] and rows[0]["text"] == text


def test_broken_csv_and_exemplars_in_another_encoding_are_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.csv"
    broken.write_text('text,level\n"unclosed,Apply\n', encoding="utf-8")
    with pytest.raises(DataError, match="not valid CSV"):
        read_csv(broken)
    exemplars = tmp_path / "exemplars.csv"
    exemplars.write_bytes("text,level\nQu'est-ce qu'un caf\xe9 ?,Remember\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"exemplars\.csv:2: byte 0xe9 is not utf-8"):
        load_exemplars(exemplars)
    assert load_exemplars(exemplars, encoding="latin-1")["text"] == ["Qu'est-ce qu'un café ?"]
    store = tmp_path / "r.sqlite"
    result = CliRunner().invoke(
        main,
        ["run", "--model", "tiny-llama", "--store", str(store), f"exemplars={exemplars}"],
    )
    _one_line_error(result, "is not utf-8 text")
    assert not store.exists()


def test_annotations_in_another_encoding_need_their_encoding_named(tmp_path: Path) -> None:
    first = load_annotations()[0]
    first["text"] = "Qu'est-ce qu'un café ?"
    annotations = tmp_path / "annotations.jsonl"
    annotations.write_bytes((json.dumps(first, ensure_ascii=False) + "\n").encode("latin-1"))
    before = annotations.read_bytes()
    result = _score("agreement", "--annotations", str(annotations), "--store", "missing.sqlite")
    _one_line_error(result, "annotations.jsonl:1: byte 0xe9 is not utf-8 text")
    assert load_annotations(annotations, encoding="latin-1")[0]["text"] == first["text"]
    result = _score(
        "agreement",
        "--annotations",
        str(annotations),
        "--encoding",
        "latin-1",
        "--store",
        str(tmp_path / "missing.sqlite"),
    )
    _one_line_error(result, "missing.sqlite")  # read past the bytes, on to the store
    assert annotations.read_bytes() == before and not (tmp_path / "missing.sqlite").exists()
