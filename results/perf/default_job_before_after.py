"""The main job before and after the throughput work, on one machine: wall times from the two
`nox -s run` logs (each under `time`, in a fresh clone) and how many texts the two stores share.

    python results/perf/default_job_before_after.py OLD_CLONE NEW_CLONE --out FILE.json

Each clone holds `runs/default.sqlite` and `run.log` (the output of `time python3.11 -m nox -s
run`); its commit is read from the clone.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import subprocess
from pathlib import Path


def texts(store: Path) -> dict[tuple, str]:
    """(method, level, seed, scenario) -> text, read-only (a missing store is an error, not a
    new empty file)."""
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as db:
        query = "SELECT method, level, seed, scenario_id, text FROM generations"
        return {(m, lv, s, sc): t for m, lv, s, sc, t in db.execute(query)}


def timing(log: str) -> dict[str, float]:
    """Seconds of the whole session (`time`'s real) and of the run's progress bar."""
    real = re.findall(r"real\s+(\d+)m([\d.]+)s", log)[-1]
    bar = re.findall(r"(\d+)/\1 \[(\d+):(\d+)", log)[-1]
    return {
        "session_s": int(real[0]) * 60 + float(real[1]),
        "rows_s": int(bar[1]) * 60 + int(bar[2]),
    }


def clone(path: Path) -> dict:
    commit = subprocess.run(
        ["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return {"commit": commit, **timing((path / "run.log").read_text(encoding="utf-8"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    old, new = texts(args.old / "runs/default.sqlite"), texts(args.new / "runs/default.sqlite")
    shared = set(old) & set(new)
    before, after = clone(args.old), clone(args.new)
    record = {
        "command": "time python3.11 -m nox -s run (fresh clone, alone on the machine)",
        "before": before,
        "after": after,
        "speedup_session": round(before["session_s"] / after["session_s"], 2),
        "speedup_rows": round(before["rows_s"] / after["rows_s"], 2),
        "rows": len(shared),
        "identical_texts": sum(old[k] == new[k] for k in shared),
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
