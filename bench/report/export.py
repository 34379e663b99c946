"""Per-sample logs: a store's rows as gzipped JSON lines, and rows read back from either.

An export is what the paper's figures and tables are rebuilt from without rerunning
anything: its first line is a header (format, source, row count, `rows_sha256`), then one line
per text with every key, score and diagnostic. Rows are written in a fixed order and the gzip
stream carries no timestamp or file name, so exporting the same rows twice gives the same
bytes. `rows_sha256` digests the rows' content (not the SQLite file, whose bytes change with
its journal), so an export can be checked against the store it came from.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from bench.atomic import write_atomically
from bench.data.levels import LEVELS
from bench.errors import ConfigError, DataError
from bench.store import GenerationRow, ResultsStore
from bench.typecheck import check_values

EXPORT_FORMAT = 1
EXPORT_SUFFIX = ".jsonl.gz"
_ROW_FIELDS = frozenset(f.name for f in fields(GenerationRow))
_LEVEL_ORDER = {level.value: level.index for level in LEVELS}


def _order(row: GenerationRow) -> tuple:
    return (
        row.run_key,
        row.method,
        row.setting_key,
        _LEVEL_ORDER.get(row.level, len(_LEVEL_ORDER)),
        row.seed,
        row.scenario_id,
    )


def _line(row: GenerationRow) -> str:
    return json.dumps(asdict(row), sort_keys=True, ensure_ascii=False)


def rows_sha256(rows: list[GenerationRow]) -> str:
    """sha256 of the rows' canonical JSON lines in export order."""
    digest = hashlib.sha256()
    for row in sorted(rows, key=_order):
        digest.update(_line(row).encode("utf-8") + b"\n")
    return digest.hexdigest()


def write_export(rows: list[GenerationRow], path: str | Path, source: str) -> dict[str, Any]:
    """Write `rows` to `path` (a .jsonl.gz file, atomically); returns the header."""
    path = Path(path)
    if not path.name.endswith(EXPORT_SUFFIX):
        raise DataError(f"an export is a {EXPORT_SUFFIX} file, not {path.name}")
    ordered = sorted(rows, key=_order)
    header = {
        "export": EXPORT_FORMAT,
        "source": source,
        "rows": len(ordered),
        "rows_sha256": rows_sha256(ordered),
    }
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as stream:
        stream.write((json.dumps(header, sort_keys=True) + "\n").encode("utf-8"))
        for row in ordered:
            stream.write((_line(row) + "\n").encode("utf-8"))
    write_atomically(path, buffer.getvalue())
    return header


def read_export(path: str | Path) -> tuple[dict[str, Any], list[GenerationRow]]:
    """The header and rows of an export; a damaged or foreign file is a `DataError`."""
    path = Path(path)
    try:
        with gzip.open(path, "rt", encoding="utf-8") as stream:
            lines = stream.read().splitlines()
    except FileNotFoundError:
        raise DataError(f"export not found: {path}") from None
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not a readable export ({error})") from None
    try:
        header = json.loads(lines[0]) if lines else {}
        records = [json.loads(line) for line in lines[1:]]
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: line {error.lineno} is not JSON") from None
    if header.get("export") != EXPORT_FORMAT:
        raise DataError(f"{path} is not an export of format {EXPORT_FORMAT}")
    for number, record in enumerate(records, start=2):
        if not isinstance(record, dict) or set(record) != _ROW_FIELDS:
            raise DataError(f"{path}: line {number} is not a stored row of this bench")
        try:
            check_values(GenerationRow, record, f"{path}: line {number}")
        except ConfigError as error:
            raise DataError(str(error)) from None
    rows = [GenerationRow(**record) for record in records]
    if len(rows) != header["rows"] or rows_sha256(rows) != header["rows_sha256"]:
        raise DataError(f"{path}: its rows do not match its header (truncated or edited)")
    return header, rows


def load_rows(source: str | Path, cell_hashes: Iterable[str] | None = None) -> list[GenerationRow]:
    """Rows of a results store or of an export (by its suffix), optionally only those of the
    given cells. Opening a store this way never changes it."""
    if str(source).endswith(EXPORT_SUFFIX):
        rows = read_export(source)[1]
    else:
        with ResultsStore(source, read_only=True) as store:
            rows = list(store.rows())
    wanted = None if cell_hashes is None else set(cell_hashes)
    return [row for row in rows if wanted is None or row.cell_hash in wanted]


def select_rows(
    rows: list[GenerationRow],
    source: str,
    scorer: str | None = None,
    split: str | None = None,
    methods: Iterable[str] = (),
) -> list[GenerationRow]:
    """The rows of one scorer for an export, optionally of one split and some methods; an
    empty selection, or rows of several scorers without a choice, is an error."""
    wanted = set(methods)
    chosen = [
        row
        for row in rows
        if (scorer is None or row.scorer == scorer)
        and (split is None or row.split == split)
        and (not wanted or row.method in wanted)
    ]
    if not chosen:
        raise DataError(f"{source} has no rows for that selection")
    scorers = sorted({row.scorer for row in chosen})
    if len(scorers) > 1:
        raise DataError(
            f"{source} holds rows of {len(scorers)} scorers ({', '.join(scorers)}): "
            "choose one with --scorer"
        )
    return chosen
