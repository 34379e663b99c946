"""Resumable results store: SQLite in WAL mode, one row per generation.

A row is keyed by (cell_hash, scenario_id), so a killed run that is started again writes only
what is missing: nothing is lost (each batch commits as one transaction) or duplicated.

Three keys say what a row is (see `bench.runner`):
- `gen_key`: everything that decides the text (model weights, task, decoding, data, method
  fingerprint and setting, level, seed). Rows of one gen_key may be rescored, never remade.
- `cell_hash`: gen_key plus the scorer's fingerprint: everything that decides the row.
- `run_key`: everything methods share in one comparison (model, task, decoding, data, scorer);
  reports never pool rows of different run keys, and take cuts from the run's own control.

The file knows itself: `application_id` and `user_version` are stamped on creation, and a
foreign, newer or corrupt database is refused with one line. Runs sharing a store split the
work through claims: a run claims the rows of a batch before making them, and skips rows
another live run has claimed.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, get_type_hints

from bench.atomic import make_folder
from bench.errors import DataError

APPLICATION_ID = 0x424C4F4F
"""'BLOO': the SQLite header field that marks a file as this bench's results store."""
SCHEMA_VERSION = 3
"""user_version of stores this code writes. 2: unstamped stores with run keys and diagnostics
(stamped on their first write); 3: stamp and claims."""
BUSY_TIMEOUT_S = 60.0
"""How long a write waits for another process's lock before the store is reported in use."""
CLAIM_TTL_S = 3600.0
"""A claim made on another host counts as abandoned after this long (a batch takes minutes)."""


@dataclass
class GenerationRow:
    """One stored generation with its provenance."""

    cell_hash: str
    scenario_id: str
    gen_key: str
    run_key: str
    setting_key: str
    """The method's setting (fingerprint + hyperparameters), the same for every level/seed."""
    model: str
    weights_sha256: str
    task: str
    method: str
    role: str
    """'control', 'prompting' or '' (see `Steerer.role`)."""
    hparams: dict[str, Any]
    fingerprint: dict[str, Any]
    """The method's fingerprint (code sha, build hyperparameters, artifact shas)."""
    level: str
    seed: int
    split: str
    prompt: list[dict[str, str]]
    text: str
    n_tokens: int
    finished: bool
    scores: dict[str, Any]
    scorer: str
    """The scorer's fingerprint."""
    decoding: dict[str, Any]
    versions: dict[str, str]
    git_commit: str
    config_hash: str
    diagnostics: dict[str, float] = field(default_factory=dict)
    """What the method measured about its own steering (e.g. attention shift)."""
    created_at: str = field(default="")


def _sql_type(annotation: Any) -> tuple[str, bool]:
    """(SQL type, stored as JSON) of a row field's type."""
    origin = getattr(annotation, "__origin__", annotation)
    if origin in (dict, list):
        return "TEXT", True
    if annotation in (int, bool):
        return "INTEGER", False
    if annotation is str:
        return "TEXT", False
    raise TypeError(f"no SQL type for {annotation!r}")


_TYPES = get_type_hints(GenerationRow)
_JSON_COLUMNS = tuple(f.name for f in fields(GenerationRow) if _sql_type(_TYPES[f.name])[1])
_DEFAULTS = {
    "diagnostics": "'{}'",
    "created_at": "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
}


def _schema() -> str:
    """The SQL of the store, derived from `GenerationRow` (the single source of its columns)."""
    columns = []
    for f in fields(GenerationRow):
        sql_type = _sql_type(_TYPES[f.name])[0]
        default = f" DEFAULT {_DEFAULTS[f.name]}" if f.name in _DEFAULTS else ""
        columns.append(f"    {f.name} {sql_type} NOT NULL{default}")
    columns.append("    PRIMARY KEY (cell_hash, scenario_id)")
    body = ",\n".join(columns)
    return f"""
CREATE TABLE IF NOT EXISTS generations (
{body}
);
CREATE INDEX IF NOT EXISTS generations_gen_key ON generations (gen_key, scenario_id);
CREATE INDEX IF NOT EXISTS generations_run_key ON generations (run_key);
CREATE TABLE IF NOT EXISTS claims (
    cell_hash   TEXT NOT NULL,
    scenario_id TEXT NOT NULL,
    owner       TEXT NOT NULL,
    claimed_at  REAL NOT NULL,
    PRIMARY KEY (cell_hash, scenario_id)
);
"""


SCHEMA = _schema()

Key = tuple[str, str]
"""(cell_hash, scenario_id): what identifies a row."""


@dataclass(frozen=True)
class Owner:
    """Who holds a claim: a process on a host, and which store object in it."""

    host: str
    pid: int
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.token}"

    @classmethod
    def parse(cls, text: str) -> Owner:
        host, pid, token = text.rsplit(":", 2)
        return cls(host, int(pid), token)

    @classmethod
    def this_process(cls) -> Owner:
        return cls(socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])

    def alive(self, claimed_at: float, now: float) -> bool:
        """Whether the claim still stands: its process runs (same host), or it is recent."""
        if self.host != socket.gethostname():
            return now - claimed_at < CLAIM_TTL_S
        if self.pid == os.getpid():
            return True
        try:
            os.kill(self.pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return False
        except PermissionError:  # it exists, under another user
            pass
        return True


def read_only_uri(path: Path) -> str:
    """The URI that opens a store for reading without changing anything: immutable when no
    write-ahead log exists (no run writing), so SQLite creates no -wal/-shm beside it; through
    the log when one does."""
    live = path.with_name(path.name + "-wal").exists()
    return f"{path.resolve().as_uri()}?{'mode=ro' if live else 'mode=ro&immutable=1'}"


def _encode(row: GenerationRow) -> dict[str, Any]:
    """The row as SQL values; a row made now (no `created_at`) is stamped with the time."""
    record = asdict(row)
    if not record["created_at"]:
        now = time.time()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        record["created_at"] = f"{stamp}.{int(now % 1 * 1000):03d}Z"
    for column in _JSON_COLUMNS:
        record[column] = json.dumps(record[column], sort_keys=True)
    record["finished"] = int(record["finished"])
    return record


def _content(row: GenerationRow) -> dict[str, Any]:
    """What a row says (all but when it was made)."""
    return {**asdict(row), "created_at": ""}


class ResultsStore:
    """The SQLite file behind a run; open it only once the run's inputs are validated."""

    def __init__(
        self, path: str | Path, read_only: bool = False, timeout_s: float = BUSY_TIMEOUT_S
    ) -> None:
        """`read_only` opens an existing store for readers (reports, exports): nothing about
        the file changes, and a missing or foreign file is an error. `timeout_s`: how long a
        write waits on another process's lock."""
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.owner = Owner.this_process()
        self.read_only = read_only
        if self.path.is_dir():
            raise DataError(f"store {path} is a directory, not a results file")
        if read_only:
            if not self.path.is_file():
                raise DataError(f"store not found: {path}")
            self._db = self._connect(read_only_uri(self.path), uri=True)
            self._check(writable=False)
            return
        make_folder(self.path.parent)
        absent = [s for s in (Path(f"{path}-wal"), Path(f"{path}-shm")) if not s.exists()]
        self._db = self._connect(str(self.path))
        try:
            self._check(writable=True)
        except DataError:  # a store we may not write: leave no WAL files of ours beside it
            for sidecar in absent:
                sidecar.unlink(missing_ok=True)
            raise

    def _connect(self, target: str, uri: bool = False) -> sqlite3.Connection:
        try:
            return sqlite3.connect(target, uri=uri, timeout=self.timeout_s)
        except sqlite3.Error as error:
            raise DataError(f"cannot open store {self.path}: {error}") from None

    def _fail(self, message: str) -> None:
        self._db.close()
        raise DataError(message)

    def _check(self, writable: bool) -> None:
        """Refuse what is not a sound store of this bench; stamp and migrate our own."""
        path = self.path
        try:
            (application_id,) = self._db.execute("PRAGMA application_id").fetchone()
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            tables = {
                name
                for (name,) in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            problems = [r[0] for r in self._db.execute("PRAGMA quick_check(3)")]
            self.tables = tables
        except sqlite3.OperationalError as error:
            self._fail(self._locked(error) or f"cannot read store {path}: {error}")
        except sqlite3.DatabaseError as error:
            if "malformed" in str(error):
                self._fail(f"{path} is corrupt (SQLite: {error})")
            self._fail(f"{path} is not a results store (not a sound SQLite file: {error})")
        if problems != ["ok"]:
            first = " ".join(" ".join(problems).split())
            self._fail(f"{path} is corrupt (SQLite quick_check: {first}); `bench store check`")
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(generations)")}
        if application_id not in (0, APPLICATION_ID):
            self._fail(f"{path} is another application's SQLite database (not a results store)")
        if application_id == 0 and tables and not columns:
            listed = ", ".join(sorted(tables)[:3])
            self._fail(f"{path} is another application's SQLite database (tables: {listed})")
        if columns and "run_key" not in columns:
            self._fail(
                f"{path} was written by an older bench (before run keys); "
                "use a new store (--store) or delete it"
            )
        if version > SCHEMA_VERSION:
            self._fail(
                f"{path} was written by a newer bench (schema {version}, this one reads "
                f"{SCHEMA_VERSION}); upgrade bench"
            )
        expected = {f.name for f in fields(GenerationRow)}
        lacking = expected - columns - ({"diagnostics"} if version < SCHEMA_VERSION else set())
        if columns and lacking:
            self._fail(f"{path} is damaged: its rows lack column(s) {', '.join(sorted(lacking))}")
        if not writable:
            if not columns:
                self._fail(f"{path} is not a results store (empty)")
            return
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            if application_id == APPLICATION_ID and version == SCHEMA_VERSION:
                self._db.execute("BEGIN IMMEDIATE")  # in use by another writer? say so now
                self._db.execute("ROLLBACK")
                return
            migration = (
                "ALTER TABLE generations ADD COLUMN diagnostics TEXT NOT NULL DEFAULT '{}';"
                if columns and "diagnostics" not in columns  # stores from before diagnostics
                else ""
            )
            self._db.executescript(
                f"BEGIN IMMEDIATE;{migration}{SCHEMA}"
                f"PRAGMA application_id = {APPLICATION_ID};"
                f"PRAGMA user_version = {SCHEMA_VERSION};COMMIT;"
            )
        except sqlite3.OperationalError as error:
            self._fail(str(self._write_error(error)))

    def _write_error(self, error: sqlite3.OperationalError) -> DataError:
        return DataError(self._locked(error) or f"cannot write store {self.path}: {error}")

    def _locked(self, error: sqlite3.OperationalError) -> str | None:
        """The one-line message for a store another process holds, else None."""
        if "locked" in str(error) or "busy" in str(error):
            return (
                f"store {self.path} is in use by another process (still locked after "
                f"{self.timeout_s:g} s); try again when it is done"
            )
        return None

    def close(self) -> None:
        """Release this store object's claims (rows it claimed but did not make) and close."""
        if not self.read_only:
            try:
                with self._db:
                    self._db.execute("DELETE FROM claims WHERE owner = ?", (str(self.owner),))
            except sqlite3.OperationalError:
                pass  # locked: the claims lapse with this process (see `Owner.alive`)
        self._db.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def done_scenarios(self, cell_hash: str) -> set[str]:
        """Scenario ids already stored for a cell."""
        rows = self._db.execute(
            "SELECT scenario_id FROM generations WHERE cell_hash = ?", (cell_hash,)
        )
        return {scenario_id for (scenario_id,) in rows}

    def generated(self, gen_key: str) -> dict[str, GenerationRow]:
        """Rows (any scorer) that already hold the text of this generation key, by scenario."""
        return {row.scenario_id: row for row in self.rows(gen_key=gen_key)}

    def claim(self, keys: Iterable[Key]) -> set[Key]:
        """Claim the rows of `keys` that are neither stored nor claimed by another live run;
        returns those now ours (one transaction, so two runs never claim one row)."""
        wanted = list(dict.fromkeys(keys))
        mine: set[Key] = set()
        now = time.time()
        try:
            with self._db:
                self._db.execute("BEGIN IMMEDIATE")
                for key in wanted:
                    if self._db.execute(
                        "SELECT 1 FROM generations WHERE cell_hash = ? AND scenario_id = ?", key
                    ).fetchone():
                        continue
                    held = self._db.execute(
                        "SELECT owner, claimed_at FROM claims "
                        "WHERE cell_hash = ? AND scenario_id = ?",
                        key,
                    ).fetchone()
                    others = held and held[0] != str(self.owner)
                    if others and Owner.parse(held[0]).alive(held[1], now):
                        continue
                    self._db.execute(
                        "INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?)",
                        (*key, str(self.owner), now),
                    )
                    mine.add(key)
        except sqlite3.OperationalError as error:
            raise self._write_error(error) from None
        return mine

    def add(self, rows: Iterable[GenerationRow]) -> int:
        """Insert rows in one transaction, skipping rows already present, and release their
        claims; returns rows written."""
        records = [_encode(row) for row in rows]
        if not records:
            return 0
        columns = list(records[0])
        sql = (
            f"INSERT OR IGNORE INTO generations ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})"
        )
        try:
            with self._db:
                before = self._db.total_changes
                self._db.executemany(sql, records)
                written = self._db.total_changes - before
                self._db.executemany(
                    "DELETE FROM claims WHERE cell_hash = ? AND scenario_id = ? AND owner = ?",
                    [(r["cell_hash"], r["scenario_id"], str(self.owner)) for r in records],
                )
        except sqlite3.OperationalError as error:
            raise self._write_error(error) from None
        return written

    def merge(self, rows: Iterable[GenerationRow]) -> tuple[int, int]:
        """Add rows made elsewhere (an export), all or none: a row whose key is stored must be
        stored identically, and a generation key must keep its text; otherwise a `DataError`
        and nothing is written. Returns (rows written, rows already here)."""
        incoming: dict[Key, GenerationRow] = {}
        texts: dict[Key, str] = {}
        for row in rows:
            key = (row.cell_hash, row.scenario_id)
            if key in incoming and _content(incoming[key]) != _content(row):
                raise DataError(
                    f"the rows to import hold row {key[1]} of cell {key[0][:12]} twice, with "
                    "other contents; nothing imported"
                )
            if texts.setdefault((row.gen_key, row.scenario_id), row.text) != row.text:
                raise DataError(
                    f"the rows to import hold two texts for generation {row.gen_key[:12]} of "
                    f"{key[1]}; nothing imported"
                )
            incoming[key] = row
        present = 0
        for key, row in incoming.items():
            stored = self._one("cell_hash = ? AND scenario_id = ?", key)
            if stored is not None:
                if _content(stored) != _content(row):
                    raise DataError(
                        f"{self.path} already holds row {key[1]} of cell {key[0][:12]} "
                        "with other contents; nothing imported"
                    )
                present += 1
                continue
            same_text = self._one("gen_key = ? AND scenario_id = ?", (row.gen_key, key[1]))
            if same_text is not None and same_text.text != row.text:
                raise DataError(
                    f"{self.path} holds another text for generation {row.gen_key[:12]} of "
                    f"{key[1]}; nothing imported"
                )
        return self.add(incoming.values()), present

    def _one(self, clause: str, values: tuple[str, str]) -> GenerationRow | None:
        cursor = self._db.execute(f"SELECT * FROM generations WHERE {clause} LIMIT 1", values)
        return next(self._decode(cursor), None)

    def rows(self, **where: Any) -> Iterator[GenerationRow]:
        """All rows, optionally filtered by equality on columns (e.g. method='none')."""
        known = {f.name for f in fields(GenerationRow)}
        if set(where) - known:
            raise ValueError(f"unknown column(s): {', '.join(sorted(set(where) - known))}")
        clause = " AND ".join(f"{column} = :{column}" for column in where)
        sql = "SELECT * FROM generations" + (f" WHERE {clause}" if clause else "")
        yield from self._decode(self._db.execute(sql + " ORDER BY rowid", where))

    def _decode(self, cursor: sqlite3.Cursor) -> Iterator[GenerationRow]:
        names = [description[0] for description in cursor.description]
        for values in cursor:
            record = dict(zip(names, values, strict=True))
            for column in _JSON_COLUMNS:
                try:
                    record[column] = json.loads(record[column])
                except (json.JSONDecodeError, TypeError):
                    raise DataError(
                        f"store {self.path}: the {column} of row ({record['cell_hash']}, "
                        f"{record['scenario_id']}) is not JSON: the store is damaged"
                    ) from None
            record["finished"] = bool(record["finished"])
            yield GenerationRow(**record)

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]

    def duplicate_keys(self) -> int:
        """(cell_hash, scenario_id) pairs stored more than once (0 in a sound store)."""
        return self._db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM generations GROUP BY cell_hash, scenario_id "
            "HAVING COUNT(*) > 1)"
        ).fetchone()[0]

    def conflicting_texts(self) -> int:
        """(gen_key, scenario_id) pairs stored with two different texts: a key that does not
        decide its text (rescoring keeps the text, so this is 0 in a sound store)."""
        return self._db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM generations GROUP BY gen_key, scenario_id "
            "HAVING COUNT(DISTINCT text) > 1)"
        ).fetchone()[0]

    def scorer_counts(self) -> dict[str, int]:
        """Rows per scorer fingerprint."""
        query = "SELECT scorer, COUNT(*) FROM generations GROUP BY scorer"
        return dict(self._db.execute(query).fetchall())

    def method_code_counts(self) -> dict[tuple[str, str], int]:
        """Rows per (method, code sha of the method that made them)."""
        code = "json_extract(fingerprint, '$.code')"
        query = f"SELECT method, {code}, COUNT(*) FROM generations GROUP BY method, {code}"
        return {(method, sha): n for method, sha, n in self._db.execute(query)}

    def claims(self) -> list[tuple[Owner, float]]:
        """Every standing claim: (owner, when it was made)."""
        if "claims" not in self.tables:  # an unstamped store, opened read-only
            return []
        query = "SELECT owner, claimed_at FROM claims"
        return [(Owner.parse(owner), at) for owner, at in self._db.execute(query)]


def discard_if_unused(path: str | Path) -> None:
    """Remove a store a failed run created: only when it holds no row and no claim (so a run
    that started on it meanwhile keeps it), with its WAL files."""
    store = Path(path)
    try:
        with sqlite3.connect(store, timeout=0) as db:
            rows = db.execute("SELECT count(*) FROM generations").fetchone()[0]
            claims = db.execute("SELECT count(*) FROM claims").fetchone()[0]
        db.close()
    except sqlite3.Error:
        return  # locked or not ours to judge: keep it
    if rows == 0 and claims == 0:
        for leftover in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
            leftover.unlink(missing_ok=True)
