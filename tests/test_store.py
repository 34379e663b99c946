"""The results store knows itself (stamp, schema version, quick check), never lets a reader
change a file, reports a busy store in one line, and lets runs sharing a store split the work
through claims."""

from __future__ import annotations

import hashlib
import os
import socket
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.errors import DataError
from bench.store import APPLICATION_ID, SCHEMA_VERSION, GenerationRow, ResultsStore


def _row(scenario: int, cell: str = "c0", text: str = "What now?") -> GenerationRow:
    return GenerationRow(
        cell_hash=cell,
        scenario_id=f"s{scenario}",
        gen_key=f"g-{cell}",
        run_key="r",
        setting_key="k",
        model="tiny-llama",
        weights_sha256="w",
        task="question",
        method="none",
        role="control",
        hparams={},
        fingerprint={"code": "x"},
        level="Apply",
        seed=0,
        split="dev",
        prompt=[{"role": "user", "content": "hi"}],
        text=text,
        n_tokens=3,
        finished=True,
        scores={"bloom_level": "Apply"},
        scorer="sc",
        decoding={"greedy": True},
        versions={"torch": "2"},
        git_commit="abc",
        config_hash="h",
    )


def _execute(path: Path, *statements: str) -> None:
    """Run SQL on a file as another program would, and close it (no WAL files left)."""
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_store_is_stamped_and_reads_back_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        assert store.add([_row(0), _row(1)]) == 2
        assert store.add([_row(0)]) == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    with ResultsStore(path, read_only=True) as store:
        rows = list(store.rows())
    assert [r.scenario_id for r in rows] == ["s0", "s1"] and rows[0].prompt[0]["content"] == "hi"


def _foreign(path: Path) -> None:
    _execute(
        path, "CREATE TABLE photos (id INTEGER, name TEXT)", "INSERT INTO photos VALUES (1, 'x')"
    )


def _not_sqlite(path: Path) -> None:
    path.write_text("id,name\n1,cat\n")


def _corrupt(path: Path) -> None:
    with ResultsStore(path) as store:
        store.add([_row(i, text="x" * 500) for i in range(40)])
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 2 + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))


def _newer(path: Path) -> None:
    with ResultsStore(path) as store:
        store.add([_row(0)])
    _execute(path, f"PRAGMA user_version = {SCHEMA_VERSION + 1}")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_foreign, "another application's SQLite database (tables: photos)"),
        (_not_sqlite, "is not a results store (not a sound SQLite file"),
        (_corrupt, "corrupt"),
        (_newer, "written by a newer bench"),
    ],
)
@pytest.mark.parametrize("read_only", [False, True])
def test_a_file_that_is_not_a_sound_store_of_ours_is_refused_untouched(
    tmp_path: Path, make, message: str, read_only: bool
) -> None:
    path = tmp_path / "r.sqlite"
    make(path)
    before = {p.name: _digest(p) for p in tmp_path.iterdir()}
    with pytest.raises(DataError) as error:
        ResultsStore(path, read_only=read_only)
    assert message in str(error.value) and "\n" not in str(error.value)
    assert {p.name: _digest(p) for p in tmp_path.iterdir()} == before


def test_a_reader_never_makes_a_database_of_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    path.touch()
    with pytest.raises(DataError, match="not a results store"):
        ResultsStore(path, read_only=True)
    assert path.read_bytes() == b"" and sorted(p.name for p in tmp_path.iterdir()) == [
        "empty.sqlite"
    ]


def test_a_store_path_that_cannot_be_a_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="is a directory"):
        ResultsStore(tmp_path)
    (tmp_path / "plain").write_text("x")
    with pytest.raises(DataError, match=r"cannot create folder .*: a file is in the way"):
        ResultsStore(tmp_path / "plain" / "r.sqlite")


def test_an_unstamped_store_of_this_bench_is_stamped_on_write_and_keeps_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.sqlite"
    with ResultsStore(path) as store:
        store.add([_row(0)])
    # as stores were before the stamp
    _execute(path, "DROP TABLE claims", "PRAGMA application_id = 0", "PRAGMA user_version = 0")
    before = _digest(path)
    with ResultsStore(path, read_only=True) as store:
        assert store.count() == 1
    assert _digest(path) == before
    with ResultsStore(path) as store:
        assert store.count() == 1 and store.add([_row(1)]) == 1
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


def test_a_store_another_process_holds_is_reported_in_use(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add([_row(0)])
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(DataError, match="in use"):  # on opening, before any work
            ResultsStore(path, timeout_s=0.2)
    finally:
        holder.execute("ROLLBACK")
    with ResultsStore(path, timeout_s=0.2) as store:  # and on writing, after opening
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(DataError, match="in use"):
            store.add([_row(1)])
        with pytest.raises(DataError, match="in use"):
            store.claim([("c0", "s1")])
        holder.execute("ROLLBACK")
    holder.close()
    with ResultsStore(path, read_only=True) as store:
        assert store.count() == 1


def test_two_stores_on_one_file_never_claim_the_same_row(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    keys = [("c0", f"s{i}") for i in range(4)]
    with ResultsStore(path) as first, ResultsStore(path) as second:
        assert first.claim(keys[:3]) == set(keys[:3])
        assert second.claim(keys) == {keys[3]}
        first.add([_row(0)])
        assert second.claim(keys[:1]) == set()  # stored now, not claimable
    with ResultsStore(path) as third:  # the first two released their claims on closing
        assert third.claim(keys) == set(keys[1:])


def test_a_claim_of_a_process_that_died_is_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add([_row(0)])
    dead = 2**22 + 12345  # above the default pid_max of 4194304
    live = os.getppid()
    host = socket.gethostname()
    _execute(
        path,
        f"INSERT INTO claims VALUES ('c0', 's1', '{host}:{dead}:old', 0)",
        f"INSERT INTO claims VALUES ('c0', 's2', '{host}:{live}:old', 0)",
    )
    with ResultsStore(path) as store:
        assert store.claim([("c0", "s1"), ("c0", "s2")]) == {("c0", "s1")}


def _check(path: Path):
    from click.testing import CliRunner

    from bench.cli import main

    return CliRunner().invoke(main, ["store", "check", str(path)])


def test_store_check_counts_stale_and_conflicting_rows_and_fails_on_them(tmp_path: Path) -> None:
    from dataclasses import replace

    from bench.methods.base import source_sha256
    from bench.methods.registry import method_class
    from bench.scoring.fingerprint import scorer_fingerprint

    path = tmp_path / "r.sqlite"
    current = {
        "scorer": scorer_fingerprint(),
        "fingerprint": {"code": source_sha256(method_class("none"))},
    }
    sound = [replace(_row(i), **current) for i in range(3)]
    with ResultsStore(path) as store:
        store.add(sound)
    before = _digest(path)
    result = _check(path)
    assert result.exit_code == 0, result.output
    assert "rows: 3" in result.output and "stale scores (not the current scorer" in result.output
    assert _digest(path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["r.sqlite"]
    with ResultsStore(path) as store:
        store.add([_row(7)])  # an old scorer, old method code
        store.add([replace(sound[0], cell_hash="other", text="A different text?")])
    result = _check(path)
    assert result.exit_code == 1
    assert "stale scores" in result.output and ": 1 (sc: 1)" in result.output
    assert "stale rows (method code changed since): 1 (none: 1)" in result.output
    assert "conflicting texts (one generation key, two texts): 1" in result.output


def test_store_check_reports_a_corrupt_store_and_refuses_what_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    _corrupt(path)
    before = _digest(path)
    result = _check(path)
    assert result.exit_code == 1 and "integrity: " in result.output
    assert "integrity: ok" not in result.output and _digest(path) == before
    _foreign(tmp_path / "f.sqlite")
    result = _check(tmp_path / "f.sqlite")
    assert result.exit_code == 2 and "another application's" in result.stderr
    _not_sqlite(tmp_path / "t.sqlite")
    assert _check(tmp_path / "t.sqlite").exit_code == 2


def test_an_export_imported_into_a_store_exports_back_to_the_same_bytes(tmp_path: Path) -> None:
    from bench.report.export import write_export

    source = tmp_path / "made.sqlite"
    with ResultsStore(source) as store:
        store.add([_row(i) for i in range(3)])
        rows = list(store.rows())
    first = tmp_path / "first.jsonl.gz"
    write_export(rows, first, source="made.sqlite")
    result = CliRunner().invoke(
        main, ["store", "import", str(first), "--store", str(tmp_path / "copy.sqlite")]
    )
    assert result.exit_code == 0, result.output
    assert "3 rows imported, 0 already there" in result.output
    again = CliRunner().invoke(
        main, ["store", "import", str(first), "--store", str(tmp_path / "copy.sqlite")]
    )
    assert "0 rows imported, 3 already there" in again.output
    with ResultsStore(tmp_path / "copy.sqlite", read_only=True) as store:
        copied = list(store.rows())
    second = tmp_path / "second.jsonl.gz"
    write_export(copied, second, source="made.sqlite")
    assert second.read_bytes() == first.read_bytes()


def test_an_import_that_contradicts_the_store_writes_nothing(tmp_path: Path) -> None:
    from bench.report.export import write_export

    path = tmp_path / "store.sqlite"
    with ResultsStore(path) as store:
        store.add([_row(0)])
    export = tmp_path / "other.jsonl.gz"
    # a new row, and a row of a stored key that says something else: all or none
    write_export([_row(1), _row(0, text="another text")], export, source="elsewhere")
    before = _digest(path)
    result = CliRunner().invoke(main, ["store", "import", str(export), "--store", str(path)])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "with other contents; nothing imported" in result.output
    assert _digest(path) == before
