"""Resumable results store: SQLite in WAL mode, one row per generation, one writer.

A row is keyed by (cell_hash, scenario_id), so a killed run that is started again writes only
what is missing: nothing is lost (each batch commits as one transaction) or duplicated.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    cell_hash      TEXT NOT NULL,
    scenario_id    TEXT NOT NULL,
    model          TEXT NOT NULL,
    weights_sha256 TEXT NOT NULL,
    method         TEXT NOT NULL,
    hparams        TEXT NOT NULL,
    level          TEXT NOT NULL,
    seed           INTEGER NOT NULL,
    split          TEXT NOT NULL,
    prompt         TEXT NOT NULL,
    text           TEXT NOT NULL,
    n_tokens       INTEGER NOT NULL,
    finished       INTEGER NOT NULL,
    scores         TEXT NOT NULL,
    decoding       TEXT NOT NULL,
    versions       TEXT NOT NULL,
    git_commit     TEXT NOT NULL,
    config_hash    TEXT NOT NULL,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (cell_hash, scenario_id)
);
"""
_JSON_COLUMNS = ("hparams", "prompt", "scores", "decoding", "versions")


@dataclass
class GenerationRow:
    """One stored generation with its provenance."""

    cell_hash: str
    scenario_id: str
    model: str
    weights_sha256: str
    method: str
    hparams: dict[str, Any]
    level: str
    seed: int
    split: str
    prompt: list[dict[str, str]]
    text: str
    n_tokens: int
    finished: bool
    scores: dict[str, Any]
    decoding: dict[str, Any]
    versions: dict[str, str]
    git_commit: str
    config_hash: str
    created_at: str = field(default="")


class ResultsStore:
    """The SQLite file behind a run; open it only once the run's inputs are validated."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
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
