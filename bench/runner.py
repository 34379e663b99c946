"""Grid expansion, cell hashing and the local executor that fills the results store."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import product

from tqdm.auto import tqdm

from bench.config import RunConfig
from bench.data.levels import Level, parse_level
from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario, load_scenarios
from bench.errors import ConfigError, ModelUnavailableError
from bench.methods.base import Steerer
from bench.methods.registry import make_steerer, method_class
from bench.models.generation import generate
from bench.models.loading import LoadedModel, default_device, load_model, resolve_dtype
from bench.models.registry import resolve
from bench.provenance import git_commit, versions
from bench.scoring.score import GenerationScorer
from bench.store import GenerationRow, ResultsStore


@dataclass(frozen=True)
class Cell:
    """One point of the grid: everything that decides a generation except the scenario."""

    model: str
    method: str
    layer: int | None
    strength: float | None
    level: Level
    seed: int

    @property
    def hparams(self) -> dict[str, float | int]:
        return {
            k: v for k, v in (("layer", self.layer), ("strength", self.strength)) if v is not None
        }

    def hash(self, config: RunConfig, data_fingerprint: str) -> str:
        """Stable id of the cell under this decoding and scenario data (first 16 hex of sha256)."""
        payload = {
            **dataclasses.asdict(self),
            "level": self.level.value,
            "decoding": dataclasses.asdict(config.decoding),
            "dtype": str(resolve_dtype(config.dtype, default_device())),
            "split": config.split,
            "data": data_fingerprint,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def expand_grid(config: RunConfig) -> list[Cell]:
    """All cells; a method gets the layer/strength axes only if it declares them."""
    cells = []
    for model, method in product(config.models, config.methods):
        axes = method_class(method).hyperparameters
        layers = config.layers if "layer" in axes else (None,)
        strengths = config.strengths if "strength" in axes else (None,)
        if not layers or not strengths:
            missing = "layers" if not layers else "strengths"
            raise ConfigError(f"method {method!r} needs {missing} in the config")
        for layer, strength, level, seed in product(layers, strengths, config.levels, config.seeds):
            cells.append(Cell(model, method, layer, strength, parse_level(level), seed))
    return cells


def row_seed(seed: int, scenario_id: str, level: Level) -> int:
    """Per-row sampling seed, the same for every method (so methods see the same seeds)."""
    digest = hashlib.sha256(f"{seed}:{scenario_id}:{level.value}".encode()).hexdigest()
    return int(digest[:8], 16)


@dataclass
class RunSummary:
    """What a run did."""

    already_done: int
    written: int
    store: str
    cell_hashes: list[str]
    """The cells of this run, to select its rows from a store that may hold others."""


def _chunks(items: list[Scenario], size: int) -> Iterator[list[Scenario]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_models(config: RunConfig) -> None:
    for name in config.models:
        spec = resolve(name)
        if spec.kind in {"hub", "local"} and not spec.available():
            raise ModelUnavailableError(
                f"model {spec.alias!r} is not on this machine; {spec.how_to_get()}"
            )


def run(config: RunConfig) -> RunSummary:
    """Run every missing (cell, scenario) of the grid into `config.store`.

    Everything the user can get wrong (names, levels, data, models) is checked before the
    store is opened, so a bad run leaves the store untouched.
    """
    cells = expand_grid(config)
    _check_models(config)
    scenarios = [Scenario.from_row(row) for row in load_scenarios(config.split, config.scenarios)]
    fingerprint = _data_fingerprint(scenarios)  # of the whole split, so --limit runs resume
    scenarios = scenarios[: config.limit]
    exemplars = load_exemplars(config.exemplars)
    hashes = {cell: cell.hash(config, fingerprint) for cell in cells}

    with ResultsStore(config.store) as store:
        done = {cell: store.done_scenarios(hashes[cell]) for cell in cells}
        todo = {cell: [s for s in scenarios if s.id not in done[cell]] for cell in cells}
        todo = {cell: missing for cell, missing in todo.items() if missing}
        total = sum(len(missing) for missing in todo.values())
        written = 0
        with tqdm(total=total, desc="generating", unit="text", disable=total == 0) as bar:
            scorer = GenerationScorer.default() if total else None
            for model_name in config.models:
                model_cells = [cell for cell in todo if cell.model == model_name]
                if not model_cells:
                    continue
                lm = load_model(model_name, dtype=config.dtype)
                steerers: dict[tuple[str, int | None], Steerer] = {}
                for cell in model_cells:
                    key = (cell.method, cell.layer)
                    if key not in steerers:
                        steerers[key] = make_steerer(cell.method, cell.layer)
                        steerers[key].fit(lm, exemplars)
                    for batch in _chunks(todo[cell], config.batch_size):
                        rows = _generate_rows(
                            config, lm, steerers[key], scorer, cell, hashes[cell], batch
                        )
                        written += store.add(rows)
                        bar.update(len(batch))
    already = sum(len(ids) for ids in done.values())
    return RunSummary(already, written, config.store, list(hashes.values()))


def _generate_rows(
    config: RunConfig,
    lm: LoadedModel,
    steerer: Steerer,
    scorer: GenerationScorer,
    cell: Cell,
    cell_hash: str,
    batch: list[Scenario],
) -> list[GenerationRow]:
    """Generate, then score without hooks (the unsteered model is the fluency reference)."""
    prompts = [steerer.prompt(s, cell.level) for s in batch]
    seeds = [row_seed(cell.seed, s.id, cell.level) for s in batch]
    with steerer.steering(lm, cell.level, cell.strength):
        outputs = generate(lm, prompts, config.decoding, seeds)
    scores = scorer.score(lm, batch, prompts, [o.text for o in outputs], cell.level)
    return [
        GenerationRow(
            cell_hash=cell_hash,
            scenario_id=scenario.id,
            model=cell.model,
            weights_sha256=lm.weights_sha256,
            method=cell.method,
            hparams=cell.hparams,
            level=cell.level.value,
            seed=cell.seed,
            split=config.split,
            prompt=list(prompt),
            text=out.text,
            n_tokens=out.n_tokens,
            finished=out.finished,
            scores=score,
            decoding=dataclasses.asdict(config.decoding),
            versions=versions(),
            git_commit=git_commit(),
            config_hash=config.config_hash,
        )
        for scenario, prompt, out, score in zip(batch, prompts, outputs, scores, strict=True)
    ]


def _data_fingerprint(scenarios: list[Scenario]) -> str:
    payload = json.dumps([dataclasses.asdict(s) for s in scenarios], sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
