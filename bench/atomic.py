"""Write files so that a reader never sees half of one: a failed write leaves nothing."""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from bench.errors import DataError

T = TypeVar("T")


def make_folder(folder: str | Path) -> Path:
    """`folder` and its parents, created when missing; one line when that cannot be done."""
    path = Path(folder)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataError(f"cannot create folder {path}: a file is in the way") from None
    except OSError as error:
        raise DataError(f"cannot create folder {path}: {error.strerror}") from None
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


SQLITE_HEADER = b"SQLite format 3\x00"


def write_atomically(target: str | Path, content: str | bytes) -> None:
    """Write `content` (text as UTF-8, or bytes) to `target` via a temporary file in the
    same folder (created when missing), then rename. A results store (any SQLite database)
    is never written over, and a folder that cannot be written is one line."""
    target = Path(target)
    if target.is_dir():
        raise DataError(f"cannot write {target}: it is a folder")
    if target.is_file():
        with target.open("rb") as existing:
            if existing.read(len(SQLITE_HEADER)) == SQLITE_HEADER:
                raise DataError(f"{target} is a SQLite database (a results store?): not replaced")
    data = content.encode("utf-8") if isinstance(content, str) else content
    try:
        handle, staging = tempfile.mkstemp(dir=make_folder(target.parent), suffix=".tmp")
    except OSError as error:
        raise DataError(f"cannot write {target}: {error.strerror}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.chmod(staging, 0o666 & ~_umask())  # mkstemp makes 0600; a result is for everyone
        os.replace(staging, target)
    except OSError as error:
        Path(staging).unlink(missing_ok=True)
        raise DataError(f"cannot write {target}: {error.strerror}") from None
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise


def cached_pickle(path: Path, build: Callable[[], T]) -> T:
    """The object pickled at `path`; built and pickled there first (atomically) when absent."""
    if path.is_file():
        with path.open("rb") as handle:
            return pickle.load(handle)
    made = build()
    make_folder(path.parent)
    staging = path.with_suffix(".tmp")
    with staging.open("wb") as handle:
        pickle.dump(made, handle)
    staging.replace(path)
    return made
