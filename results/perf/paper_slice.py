"""Time a slice of the paper grid (`configs/paper.yaml`: every method, test split, 3 seeds) on
the SAEs used for timing, under a profile, after a one-scenario warm-up that fits (and caches)
every method's vectors and prototypes; writes rows per second and the profile's sections.

    python results/perf/paper_slice.py --limit 3 --out results/perf/paper-slice-cpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.config import load_config
from bench.profiling import Profile
from bench.provenance import git_commit
from bench.runner import run

SAES = [
    "hparams.query_sae.sae=runs/sae/quick-L15-query-topk",
    "hparams.align_sae.sae=runs/sae/quick-L15-query-aligned",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=3, help="test scenarios of the slice")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        warm = [*SAES, "limit=1", "seeds=[0]", f"store={scratch}/warm.sqlite"]
        run(load_config("configs/paper.yaml", overrides=warm))
        warm_s = time.perf_counter() - started
        config = load_config(
            "configs/paper.yaml",
            overrides=[*SAES, f"limit={args.limit}", f"store={scratch}/slice.sqlite"],
        )
        with Profile() as profile:
            summary = run(config)
    grid_rows = 7 * 84 * 6 * 3
    rate = summary.written / profile.wall_s
    record = {
        "command": f"python results/perf/paper_slice.py --limit {args.limit} --out {args.out}",
        "git_commit": git_commit(),
        "config_hash": config.config_hash,
        "warm_up_s": round(warm_s, 1),
        "rows": summary.written,
        "wall_s": round(profile.wall_s, 1),
        "rows_per_s": round(rate, 3),
        "paper_grid_rows": grid_rows,
        "paper_grid_estimate_min": round(grid_rows / rate / 60, 1),
        "sections": profile.summary(),
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in record.items() if k != "sections"}, indent=2))


if __name__ == "__main__":
    main()
