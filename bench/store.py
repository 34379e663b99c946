"""Resumable results store: SQLite in WAL mode, one row per generation, one writer.

A row is keyed by (cell_hash, scenario_id), so a killed run that is started again writes only
what is missing: nothing is lost (each batch commits as one transaction) or duplicated.

Three keys say what a row is (see `bench.runner`):
- `gen_key`: everything that decides the text (model weights, task, decoding, data, method
  fingerprint and setting, level, seed). Rows of one gen_key may be rescored, never remade.
- `cell_hash`: gen_key plus the scorer's fingerprint: everything that decides the row.
- `run_key`: everything methods share in one comparison (model, task, decoding, data, scorer);
  reports never pool rows of different run keys, and take cuts from the run's own control.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.errors import DataError

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    cell_hash      TEXT NOT NULL,
    scenario_id    TEXT NOT NULL,
    gen_key        TEXT NOT NULL,
    run_key        TEXT NOT NULL,
    setting_key    TEXT NOT NULL,
    model          TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    task           TEXT NOT NULL,
    method         TEXT NOT NULL,
    role           TEXT NOT NULL,
    hparams        TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    level          TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    split          TEXT NOT NULL,
    prompt         TEXT NOT NULL,
    text           TEXT NOT NULL,
    n_tokens       INTEGER NOT NULL,
    finished       INTEGER NOT NULL,
    scores         TEXT NOT NULL,
    diagnostics    TEXT NOT NULL DEFAULT '{}',
    scorer         TEXT NOT NULL,
    decoding       TEXT NOT NULL,
    versions       TEXT NOT NULL,
    git_commit     TEXT NOT NULL,
    config_hash    TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (cell_hash, scenario_id)
);
CREATE INDEX IF NOT EXISTS generations_gen_key ON generations (gen_key, scenario_id);
CREATE INDEX IF NOT EXISTS generations_run_key ON generations (run_key);
"""
_JSON_COLUMNS = (
    "hparams",
    "fingerprint",
    "prompt",
    "scores",
    "diagnostics",
    "decoding",
    "versions",
)


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


class ResultsStore:
    """The SQLite file behind a run; open it only once the run's inputs are validated."""

    def __init__(self, path: str | Path, read_only: bool = False) -> None:
        """`read_only` opens an existing store for readers (reports, exports): nothing about
        the file changes, and a missing or foreign file is an error."""
        self.path = Path(path)
        if read_only:
            if not self.path.is_file():
                raise DataError(f"store not found: {path}")
            self._db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                columns = {row[1] for row in self._db.execute("PRAGMA table_info(generations)")}
            except sqlite3.DatabaseError:
                self._db.close()
                raise DataError(f"{path} is not a results store (not SQLite)") from None
            if "run_key" not in columns:
                self._db.close()
                raise DataError(f"{path} is not a results store of this bench (no run keys)")
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(generations)")}
        if columns and "run_key" not in columns:
            self._db.close()
            raise DataError(
                f"{path} was written by an older bench (before run keys); "
                "use a new store (--store) or delete it"
            )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        if columns and "diagnostics" not in columns:  # stores from before diagnostics
            with self._db:
                self._db.execute(
                    "ALTER TABLE generations ADD COLUMN diagnostics TEXT NOT NULL DEFAULT '{}'"
                )
        self._db.executescript(SCHEMA)

    def close(self) -> None:
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

    def add(self, rows: Iterable[GenerationRow]) -> int:
        """Insert rows in one transaction, skipping rows already present; returns rows written."""
        records = []
        for row in rows:
            record = asdict(row)
            record.pop("created_at")
            for column in _JSON_COLUMNS:
                record[column] = json.dumps(record[column], sort_keys=True)
            record["finished"] = int(record["finished"])
            records.append(record)
        if not records:
            return 0
        columns = list(records[0])
        sql = (
            f"INSERT OR IGNORE INTO generations ({', '.join(columns)}) "
            f"VALUES ({', '.join(':' + c for c in columns)})"
        )
        with self._db:
            before = self._db.total_changes
            self._db.executemany(sql, records)
            return self._db.total_changes - before

    def rows(self, **where: Any) -> Iterator[GenerationRow]:
        """All rows, optionally filtered by equality on columns (e.g. method='none')."""
        known = {f.name for f in fields(GenerationRow)}
        if set(where) - known:
            raise ValueError(f"unknown column(s): {', '.join(sorted(set(where) - known))}")
        clause = " AND ".join(f"{column} = :{column}" for column in where)
        sql = "SELECT * FROM generations" + (f" WHERE {clause}" if clause else "")
        cursor = self._db.execute(sql + " ORDER BY rowid", where)
        names = [description[0] for description in cursor.description]
        for values in cursor:
            record = dict(zip(names, values, strict=True))
            for column in _JSON_COLUMNS:
                record[column] = json.loads(record[column])
            record["finished"] = bool(record["finished"])
            yield GenerationRow(**record)

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
