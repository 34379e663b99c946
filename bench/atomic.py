"""Write files so that a reader never sees half of one: a failed write leaves nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(target: str | Path, text: str) -> None:
    """Write `text` to `target` via a temporary file in the same folder, then rename."""
    target = Path(target)
    handle, staging = tempfile.mkstemp(
        dir=target.parent if str(target.parent) else ".", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
