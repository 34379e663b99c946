"""Score a user's CSV: add `pred_level` and one probability column per level."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path

from bench.data.levels import LEVELS
from bench.errors import DataError
from bench.scoring.bloom import trained_classifier


def score_csv(path: str | Path, text_column: str, out: str | Path | None) -> str | None:
    """Write the scored CSV to `out` atomically, or return it as text when `out` is None."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"CSV not found: {path}")
    with file.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields = list(reader.fieldnames or [])
        if text_column not in fields:
            raise DataError(f"{path}: no column {text_column!r} (columns: {', '.join(fields)})")
        rows = list(reader)
    probs = trained_classifier().predict_proba([row[text_column] or "" for row in rows])
    added = ["pred_level", *(f"p_{level.value}" for level in LEVELS)]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields + added)
    writer.writeheader()
    for row, p in zip(rows, probs, strict=True):
        row["pred_level"] = LEVELS[int(p.argmax())].value
        row.update({f"p_{level.value}": f"{q:.4f}" for level, q in zip(LEVELS, p, strict=True)})
        writer.writerow(row)
    if out is None:
        return buffer.getvalue()
    target = Path(out)
    handle, staging = tempfile.mkstemp(
        dir=target.parent if str(target.parent) else ".", suffix=".tmp"
    )
    with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
        stream.write(buffer.getvalue())
    os.replace(staging, target)
    return None
