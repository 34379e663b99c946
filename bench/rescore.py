"""Rescore a store's texts under the current scorer without building any method.

`bench run` rescores a stored text when it keys the text's cell, and keying a cell builds its
method: the SAE methods need their SAE's weights for that. A scorer change needs none of it:
every key a row carries is computable from the row and the run's inputs. A row's run key is
recomputed under the scorer that scored it; only rows whose run key matches (this config's
inputs made them) are rescored, under the run key and cell hash the current scorer gives, so
a later `bench run` of the config finds them done. A rescored row keeps the git commit and
config hash that made its text, as `bench run` does when it rescores.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from bench.config import RunConfig
from bench.data.levels import parse_level
from bench.errors import DataError
from bench.models.loading import load_model
from bench.provenance import versions
from bench.runner import prepare, run_key, stable_hash
from bench.scoring.fingerprint import scorer_fingerprint
from bench.scoring.score import GenerationScorer
from bench.store import GenerationRow, ResultsStore

BATCH_ROWS = 256
"""Rows scored together (perplexity batches similar lengths within them)."""


@dataclass(frozen=True)
class RescoreSummary:
    """What a rescore did, per the rows of an older scorer in the store."""

    rescored: int
    """Rows written anew under the current scorer."""
    already: int
    """Rows of this config's runs whose text the current scorer had already scored."""
    other_runs: int
    """Rows of an older scorer that other inputs made (another model, split, task, decoding or
    data): left as they are."""
    scorer: str
    """The current scorer's fingerprint."""


def rescore(config: RunConfig) -> RescoreSummary:
    """Score every row of `config`'s runs in `config.store` that an older scorer scored, and
    store it under the current scorer (the old rows stay)."""
    if not Path(config.store).is_file():
        raise DataError(f"{config.store}: no results store to rescore")
    inputs = prepare(config)
    current = scorer_fingerprint()
    counts = Counter[str]()
    with ResultsStore(config.store) as store:
        older = [scorer for scorer in store.scorer_counts() if scorer != current]
        matched: set[str] = set()
        for model_name in config.models:
            lm = load_model(model_name, dtype=config.dtype)
            keys = {run_key(inputs, lm, scorer): scorer for scorer in older}
            new_key = run_key(inputs, lm, current)
            todo: dict[tuple[str, str], GenerationRow] = {}
            for key in keys:
                for row in store.rows(run_key=key):
                    matched.add(f"{row.cell_hash}/{row.scenario_id}")
                    todo.setdefault((row.gen_key, row.scenario_id), row)
            done = {(r.gen_key, r.scenario_id) for r in store.rows(run_key=new_key)}
            counts["already"] += sum(1 for key in todo if key in done)
            rows = [row for key, row in todo.items() if key not in done]
            if not rows:
                continue
            scorer = GenerationScorer.build(inputs.task, inputs.exemplars, inputs.split_scenarios)
            scenarios = {s.id: s for s in inputs.split_scenarios}
            # the commit and config that made a text stay; its scorer says what scored it
            fresh = {"scorer": current, "run_key": new_key, "versions": versions()}
            with tqdm(total=len(rows), desc=f"rescoring ({model_name})", unit="text") as bar:
                for start in range(0, len(rows), BATCH_ROWS):
                    batch = rows[start : start + BATCH_ROWS]
                    scores = scorer.score(
                        lm,
                        [scenarios[row.scenario_id] for row in batch],
                        [row.text for row in batch],
                        [parse_level(row.level) for row in batch],
                    )
                    counts["rescored"] += store.add(
                        dataclasses.replace(
                            row,
                            cell_hash=stable_hash({"gen_key": row.gen_key, "scorer": current}),
                            scores=score,
                            **fresh,
                        )
                        for row, score in zip(batch, scores, strict=True)
                    )
                    bar.update(len(batch))
        stale = sum(count for scorer, count in store.scorer_counts().items() if scorer in older)
    return RescoreSummary(counts["rescored"], counts["already"], stale - len(matched), current)
