"""`bench store check`: is a results store sound, and which of its rows would the current code
make or score differently? Reads the store only (read-only; nothing is created beside it)."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import DataError, UnknownNameError
from bench.methods.base import source_sha256
from bench.methods.registry import method_class
from bench.scoring.fingerprint import scorer_fingerprint
from bench.store import APPLICATION_ID, SCHEMA_VERSION, ResultsStore, read_only_uri


@dataclass
class StoreCheck:
    """What `check_store` found; `problems` is what makes the check fail."""

    path: str
    integrity: list[str]
    """SQLite integrity_check's messages (['ok'] when sound)."""
    schema: str
    scorer: str = ""
    """The current scorer's fingerprint (what rows are compared with)."""
    rows: int = 0
    duplicate_keys: int = 0
    """(cell_hash, scenario_id) pairs stored more than once."""
    conflicting_texts: int = 0
    """(gen_key, scenario_id) pairs stored with different texts: one key, two generations."""
    stale_scores: Counter = field(default_factory=Counter)
    """Rows by scorer fingerprint, for rows not scored by the current scorer (a run rescores
    them)."""
    stale_methods: Counter = field(default_factory=Counter)
    """Rows by method, for rows made by method code that has changed since (a run remakes
    them) or by a method no longer registered."""
    claims: int = 0
    abandoned_claims: int = 0
    """Claims of runs that are gone (harmless: the next run takes them over)."""

    @property
    def problems(self) -> int:
        unsound = self.integrity != ["ok"]
        stale = sum(self.stale_scores.values()) + sum(self.stale_methods.values())
        return int(unsound) + self.duplicate_keys + self.conflicting_texts + stale

    def lines(self) -> list[str]:
        """The report, one finding per line."""
        out = [
            f"store: {self.path}",
            f"integrity: {'ok' if self.integrity == ['ok'] else '; '.join(self.integrity)}",
            f"schema: {self.schema}",
        ]
        if self.integrity != ["ok"]:
            return [*out, "(no further checks on a corrupt file)"]
        out += [
            f"rows: {self.rows}",
            f"duplicate keys: {self.duplicate_keys}",
            f"conflicting texts (one generation key, two texts): {self.conflicting_texts}",
            f"stale scores (not the current scorer {self.scorer}): " + _counts(self.stale_scores),
            "stale rows (method code changed since): " + _counts(self.stale_methods),
            f"claims: {self.claims} ({self.abandoned_claims} of runs that are gone)",
        ]
        return out


def _counts(counter: Counter) -> str:
    total = sum(counter.values())
    if not total:
        return "0"
    return f"{total} (" + ", ".join(f"{k}: {n}" for k, n in sorted(counter.items())) + ")"


def _integrity(path: Path) -> tuple[list[str], str]:
    """integrity_check and the stamp, read without creating -wal/-shm files; a file that is
    not SQLite at all is a `DataError` (nothing to check)."""
    if not path.is_file():
        raise DataError(f"store not found: {path}")
    db = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        messages = [row[0] for row in db.execute("PRAGMA integrity_check(20)")]
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        if "not a database" in str(error):
            raise DataError(f"{path} is not a results store (not SQLite)") from None
        return [str(error)], "unreadable"
    finally:
        db.close()
    if application_id == APPLICATION_ID:
        schema = f"version {version} (this bench writes {SCHEMA_VERSION})"
    else:
        schema = "unstamped (made before stamps; stamped by the next run that writes to it)"
    return [" ".join(m.split()) for m in messages], schema


def check_store(path: str | Path) -> StoreCheck:
    """Check `path`; a file that is not a store of this bench is a `DataError`."""
    file = Path(path)
    integrity, schema = _integrity(file)
    report = StoreCheck(str(path), integrity, schema)
    if integrity != ["ok"]:
        return report
    with ResultsStore(file, read_only=True) as store:
        report.rows = store.count()
        report.duplicate_keys = store.duplicate_keys()
        report.conflicting_texts = store.conflicting_texts()
        report.scorer = scorer_fingerprint()
        for scorer, n in store.scorer_counts().items():
            if scorer != report.scorer:
                report.stale_scores[scorer] = n
        codes: dict[str, str | None] = {}
        for (method, code), n in store.method_code_counts().items():
            if method not in codes:
                try:
                    codes[method] = source_sha256(method_class(method))
                except UnknownNameError:
                    codes[method] = None
            if code != codes[method]:
                report.stale_methods[method if codes[method] else f"{method} (unknown)"] += n
        claims = store.claims()
    now = time.time()
    report.claims = len(claims)
    report.abandoned_claims = sum(not owner.alive(at, now) for owner, at in claims)
    return report
