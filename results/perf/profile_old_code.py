"""The 'before' profile in results/perf/: the same small grid as `bench perf --profile`, run by
the code before the throughput work (commit b196f22), which has no profile sections of its
own. Its functions are wrapped from outside with this tree's `bench.profiling`; model forward
passes inside `generate` count as prefill (many positions) or decode (one position).

    git worktree add /tmp/before b196f22
    python results/perf/profile_old_code.py /tmp/before --vector-layer 8 --out before.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parents[2]


def _profiling() -> Any:
    spec = importlib.util.spec_from_file_location("new_profiling", HERE / "bench/profiling.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["new_profiling"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("old_tree")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--vector-layer", type=int)
    parser.add_argument("--sae")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    profiling = _profiling()
    sys.path.insert(0, str(Path(args.old_tree).resolve()))
    import bench.models.generation as generation
    import bench.runner as runner
    import bench.scoring.score as score
    from bench.config import load_config
    from bench.methods.base import Steerer
    from bench.scoring.bloom import TrainedScorer
    from bench.scoring.embeddings import SentenceEncoder
    from bench.scoring.leakage import ReferenceSet
    from bench.store import ResultsStore

    def wrap(owner: Any, name: str, section: str) -> None:
        original = getattr(owner, name)

        def timed(*a: Any, **k: Any) -> Any:
            with profiling.section(section):
                return original(*a, **k)

        setattr(owner, name, timed)

    wrap(score, "perplexities", "perplexity")
    wrap(SentenceEncoder, "encode", "embeddings")
    wrap(TrainedScorer, "level_probs", "classifier")
    wrap(TrainedScorer, "task_probs", "task detector")
    wrap(ReferenceSet, "leakage", "leakage")
    wrap(score, "retrieval_ranks", "relevance")
    wrap(score, "cosine", "relevance")
    wrap(ResultsStore, "add", "store")
    wrap(Steerer, "diagnostics", "diagnostics")
    wrap(generation, "_sample", "sample")
    inside = {"generate": False}
    original_generate = runner.generate

    def generate(*a: Any, **k: Any) -> Any:
        inside["generate"] = True
        try:
            return original_generate(*a, **k)
        finally:
            inside["generate"] = False

    runner.generate = generate
    original_load = runner.load_model

    def load_model(*a: Any, **k: Any) -> Any:
        lm = original_load(*a, **k)
        started: list[float] = []

        def before(_module: Any, _args: Any, kwargs: dict) -> None:
            started.append(time.perf_counter())

        def after(_module: Any, _args: Any, kwargs: dict, _out: Any) -> None:
            elapsed = time.perf_counter() - started.pop()
            profile = profiling._ACTIVE.get()
            if profile is not None and inside["generate"]:
                kind = "prefill" if kwargs["input_ids"].shape[1] > 1 else "decode"
                profile.add(kind, elapsed)

        lm.model.register_forward_pre_hook(before, with_kwargs=True)
        lm.model.register_forward_hook(after, with_kwargs=True)
        return lm

    runner.load_model = load_model
    methods: dict[str, dict[str, Any]] = {"none": {}, "prompting": {"wording": "described"}}
    if args.vector_layer is not None:
        methods["caa"] = {"layer": args.vector_layer}
        methods["actadd"] = {"layer": args.vector_layer}
    if args.sae:
        methods["query_sae"] = {"sae": args.sae}
    with tempfile.TemporaryDirectory() as scratch:
        overrides = [
            f"models=[{args.model}]",
            f"methods=[{','.join(methods)}]",
            f"limit={args.limit}",
            f"store={scratch}/profile.sqlite",
            "batch_size=12",
            *(f"hparams.{m}.{k}={v}" for m, hp in methods.items() for k, v in hp.items()),
        ]
        config = load_config(overrides=overrides)
        original_load(args.model)  # conversion and first load stay outside
        with profiling.Profile() as profile:
            summary = runner.run(config)
    report = {
        "code": "b196f22 (before the throughput work), wrapped by results/perf/profile_old_code.py",
        "config": {"methods": methods, "limit": args.limit, "batch_size": 12},
        "rows": summary.written,
        "wall_s": round(profile.wall_s, 2),
        "rows_per_s": round(summary.written / profile.wall_s, 3),
        "sections": profile.summary(),
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
