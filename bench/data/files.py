"""Reading users' text files (JSONL, CSV): a named encoding, bytes that do not decode as a
one-line error that says where, and no field-size limit a real text could hit."""

from __future__ import annotations

import codecs
import csv
import io
import sys
from pathlib import Path

from bench.errors import DataError

DEFAULT_ENCODING = "utf-8"
"""What files are read as unless told otherwise (a UTF-8 byte-order mark is skipped)."""

csv.field_size_limit(sys.maxsize)  # the default 128 KiB per field is less than a long text


def check_encoding(encoding: str) -> str:
    """The encoding's name, or a one-line error when Python does not know it."""
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise DataError(
            f"unknown text encoding {encoding!r} (e.g. utf-8, latin-1, cp1252)"
        ) from None


def read_text(path: str | Path, encoding: str = DEFAULT_ENCODING) -> str:
    """The file's text; bytes that are not `encoding` are an error naming line and byte."""
    file = Path(path)
    name = check_encoding(encoding)
    data = file.read_bytes()
    try:
        return data.decode("utf-8-sig" if name == "utf-8" else name)
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DataError(
            f"{path}:{line}: byte {data[error.start]:#04x} is not {encoding} text "
            f"(give the file's encoding, e.g. --encoding latin-1)"
        ) from None


def read_csv(
    path: str | Path, encoding: str = DEFAULT_ENCODING
) -> tuple[list[str], list[dict[str, str]]]:
    """(column names, rows) of a CSV with a header row."""
    reader = csv.DictReader(io.StringIO(read_text(path, encoding), newline=""), strict=True)
    try:
        columns = list(reader.fieldnames or [])
        rows = []
        for row in reader:
            if None in row:
                raise DataError(f"{path}:{reader.line_num}: more fields than the header's")
            if None in row.values():
                raise DataError(f"{path}:{reader.line_num}: fewer fields than the header's")
            rows.append(row)
    except csv.Error as error:
        raise DataError(f"{path}: not valid CSV after line {reader.line_num} ({error})") from None
    twice = sorted({name for name in columns if columns.count(name) > 1})
    if twice:
        named = ", ".join(map(repr, twice))
        raise DataError(f"{path}: column(s) {named} named twice in the header")
    return columns, rows
