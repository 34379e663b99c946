"""Grid expansion, run identity (keys), and the local executor that fills the results store.

Identity: a row's `gen_key` hashes everything that decides its text: the model's weights
(content sha256), dtype and device kind, the task (prompt, cue, stop rule), decoding, the
scenario split's data, the exemplar data, the method's fingerprint (code, build
hyperparameters, learned artifacts), its steer hyperparameters (normalized: 4 and 4.0, layer
-1 and 29 are one setting), the exact prompt template for the level, the level and the seed.
Its `cell_hash` adds the scorer's fingerprint. A resumed run reuses a row only when its cell
matches; a row whose text matches (same gen_key) but whose scorer changed is rescored, not
regenerated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tqdm.auto import tqdm

from bench.config import RunConfig
from bench.data.levels import LEVELS, Level, parse_level
from bench.data.roles import dataset_sha256, load_exemplars
from bench.data.scenarios import Scenario, load_scenarios
from bench.data.tasks import Message, Task
from bench.errors import ModelUnavailableError
from bench.methods.base import Steerer, normalize_layer
from bench.methods.registry import method_class
from bench.models.generation import generate, prompt_ids
from bench.models.loading import LoadedModel, default_device, load_model
from bench.models.registry import resolve
from bench.profiling import section
from bench.provenance import git_commit, versions
from bench.scoring.fingerprint import scorer_fingerprint
from bench.scoring.score import GenerationScorer
from bench.store import GenerationRow, ResultsStore, discard_if_unused

PLACEHOLDER = Scenario("placeholder", "{subject}", "{question}", "{student_answer}")
"""Rendered through a method's `prompt` to fingerprint its template for each level."""


def stable_hash(payload: Any) -> str:
    """sha256 (16 hex) of a JSON-able payload with sorted keys."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Setting:
    """One method with one value per declared hyperparameter."""

    method: str
    build: tuple[tuple[str, Any], ...]
    """Build-stage hyperparameters (one steerer is built and fit per distinct value)."""
    steer: tuple[tuple[str, Any], ...]
    """Steer-stage hyperparameters (passed to `steering`)."""

    @property
    def hparams(self) -> dict[str, Any]:
        return dict(self.build + self.steer)


def expand_settings(config: RunConfig) -> list[Setting]:
    """Every method setting of the grid: the product of each method's swept values."""
    settings = []
    for method, axes in config.sweeps().items():
        stages = {h.name: h.stage for h in method_class(method).hparams}
        names = list(axes)
        for values in product(*(axes[name] for name in names)):
            chosen = list(zip(names, values, strict=True))
            settings.append(
                Setting(
                    method,
                    tuple((n, v) for n, v in chosen if stages[n] == "build"),
                    tuple((n, v) for n, v in chosen if stages[n] == "steer"),
                )
            )
    return settings


def normalize_setting(setting: Setting, n_layers: int) -> Setting:
    """Layer hyperparameters in [0, n_layers), so -1 and n-1 make one cell."""
    kinds = {h.name: h.kind for h in method_class(setting.method).hparams}

    def fix(pairs: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
        return tuple(
            (
                n,
                normalize_layer(v, n_layers, f"method {setting.method!r}")
                if kinds[n] == "layer"
                else v,
            )
            for n, v in pairs
        )

    return Setting(setting.method, fix(setting.build), fix(setting.steer))


def row_seed(seed: int, scenario_id: str, level: Level) -> int:
    """Per-row sampling seed, the same for every method (so methods see the same seeds)."""
    digest = hashlib.sha256(f"{seed}:{scenario_id}:{level.value}".encode()).hexdigest()
    return int(digest[:8], 16)


@dataclass(frozen=True)
class Cell:
    """One method setting at one level and seed, with its keys."""

    setting: Setting
    steerer: Steerer
    level: Level
    seed: int
    gen_key: str
    cell_hash: str
    setting_key: str


@dataclass
class RunOutcome:
    """What a run did: counts of rows done, written and rescored (the report's per-run numbers
    are `bench.report.aggregate.RunSummary`)."""

    already_done: int
    written: int
    rescored: int
    """Rows whose text was already stored under an older scorer and was only rescored."""
    store: str
    cell_hashes: list[str]
    """The cells of this run, to select its rows from a store that may hold others."""
    elsewhere: int = 0
    """Rows another run on the same store had claimed (or stored) when this run reached them."""


def _check_models(config: RunConfig) -> None:
    for name in config.models:
        spec = resolve(name)
        if spec.kind in {"hub", "local"} and not spec.available():
            raise ModelUnavailableError(
                f"model {spec.alias!r} is not on this machine; {spec.how_to_get()}"
            )


@dataclass(frozen=True)
class RunInputs:
    """What every cell of a run shares, validated before the store is opened."""

    config: RunConfig
    task: Task
    scenarios: list[Scenario]
    """The scenarios to generate for (the first `limit` of the split)."""
    split_scenarios: list[Scenario]
    """The whole split (relevance ranks a text among all of them)."""
    exemplars: Any
    shared: dict[str, Any]
    """The hashed part of every key that is not model- or method-specific."""


def prepare(config: RunConfig) -> RunInputs:
    """Validate and load everything a run needs that the user can get wrong."""
    task = config.task_spec
    _check_models(config)
    split = [
        Scenario.from_row(row)
        for row in load_scenarios(config.split, config.scenarios, config.encoding)
    ]
    exemplars = load_exemplars(config.exemplars, form=task.form, encoding=config.encoding)
    shared = {
        "task": task.fingerprint,
        "decoding": dataclasses.asdict(config.decoding),
        "split": config.split,
        # of the whole split, so runs with a growing --limit resume
        "scenarios": stable_hash([dataclasses.asdict(s) for s in split]),
        "exemplars": dataset_sha256(exemplars),
        "device": default_device(),
    }
    return RunInputs(config, task, split[: config.limit], split, exemplars, shared)


def build_cells(inputs: RunInputs, lm: LoadedModel, scorer_key: str) -> list[Cell]:
    """Build and fit each method setting on `lm`, then key every (setting, level, seed)."""
    config = inputs.config
    model_part = {
        **inputs.shared,
        "model": lm.alias,
        "weights": lm.weights_sha256,
        "dtype": str(lm.model.dtype),
    }
    steerers: dict[tuple[str, tuple], Steerer] = {}
    cells = []
    for raw in expand_settings(config):
        setting = normalize_setting(raw, lm.adapter.n_layers)
        key = (setting.method, setting.build)
        if key not in steerers:
            steerers[key] = method_class(setting.method)(inputs.task, **dict(setting.build))
            steerers[key].fit(lm, inputs.exemplars)
        steerer = steerers[key]
        method_part = {"fingerprint": steerer.fingerprint(), "steer": dict(setting.steer)}
        setting_key = stable_hash(method_part)
        for level_name, seed in product(config.levels, config.seeds):
            level = parse_level(level_name)
            template = steerer.prompt(PLACEHOLDER, level)
            gen_key = stable_hash(
                {
                    **model_part,
                    **method_part,
                    "template": template,
                    "level": level.value,
                    "seed": seed,
                }
            )
            cell_hash = stable_hash({"gen_key": gen_key, "scorer": scorer_key})
            cells.append(Cell(setting, steerer, level, seed, gen_key, cell_hash, setting_key))
    return cells


def run_key(inputs: RunInputs, lm: LoadedModel, scorer_key: str) -> str:
    """The key of the comparison this model's rows belong to (see `bench.store`)."""
    return stable_hash(
        {
            **inputs.shared,
            "weights": lm.weights_sha256,
            "dtype": str(lm.model.dtype),
            "model": lm.alias,
            "scorer": scorer_key,
        }
    )


@dataclass(frozen=True)
class Job:
    """One row to make: a cell's text for one scenario (already stored when only rescored)."""

    cell: Cell
    scenario: Scenario
    prompt: list[Message]
    stored: GenerationRow | None = None
    """The row of the same gen_key under an older scorer: its text is rescored, not remade."""

    @property
    def steering(self) -> str:
        return steering_key(self)


PROMPT_ONLY = "prompt-only"
"""The steering context shared by every method that steers through its prompt alone."""


def steering_key(job: Job) -> str:
    """Jobs of one key share a steering context: a hooked method's setting, or no hooks."""
    return PROMPT_ONLY if job.cell.steerer.prompt_only else job.cell.setting_key


@dataclass(frozen=True)
class RowSpec:
    """A planned row as the driver of a run sees it: its keys, steering context and size in
    tokens (prompt plus max_new_tokens); a worker turns it back into a `Job`."""

    cell_hash: str
    gen_key: str
    scenario_id: str
    steering: str
    size: int


T = TypeVar("T", Job, RowSpec)


def batches(items: list[T], sizes: list[int], budget: int) -> Iterator[list[T]]:
    """Consecutive items of one steering context per batch, as many as fit `budget` tokens
    (`sizes`: each item's)."""
    batch: list[T] = []
    used = 0
    for item, size in zip(items, sizes, strict=True):
        context_changes = batch and item.steering != batch[0].steering
        if batch and (used + size > budget or context_changes):
            yield batch
            batch, used = [], 0
        batch.append(item)
        used += size
    if batch:
        yield batch


def plan(inputs: RunInputs, cells: list[Cell], done: Mapping[str, set[str]]) -> list[Job]:
    """The rows of `cells` not in `done` (cell_hash -> stored scenario ids), grouped by
    steering context (a batch shares one: a hooked method's setting, or no hooks) and, within
    one, ordered by scenario, so rows that share a prompt prefix are neighbours."""
    order = {s.id: i for i, s in enumerate(inputs.scenarios)}
    jobs = [
        Job(cell, s, cell.steerer.prompt(s, cell.level))
        for cell in cells
        for s in inputs.scenarios
        if s.id not in done.get(cell.cell_hash, ())
    ]
    first: dict[str, int] = {}
    for job in jobs:
        first.setdefault(steering_key(job), len(first))
        first.setdefault(job.cell.setting_key, len(first))
    jobs.sort(
        key=lambda j: (
            first[steering_key(j)],
            order[j.scenario.id],
            first[j.cell.setting_key],
            j.cell.level.index,
            j.cell.seed,
        )
    )
    return jobs


Stored = dict[tuple[str, str], GenerationRow]
"""Rows whose text a batch rescores, by (gen_key, scenario_id)."""


class ModelWorker:
    """One model's part of a run: the model loaded, its method settings built and fit, every
    cell keyed; makes and scores the rows of planned specs. The local executor runs one in
    the driver's process; the Ray executor runs one per actor (see `bench.ray_executor`), so
    a worker holds no store: the driver alone claims and writes."""

    def __init__(self, config: RunConfig, model_name: str) -> None:
        self.inputs = prepare(config)
        self.lm = load_model(model_name, dtype=config.dtype)
        self.scorer_key = scorer_fingerprint()
        cells = build_cells(self.inputs, self.lm, self.scorer_key)
        self.cells = {cell.cell_hash: cell for cell in cells}
        self.key = run_key(self.inputs, self.lm, self.scorer_key)
        self._scorer: GenerationScorer | None = None

    def cell_hashes(self) -> list[str]:
        """Every cell of the grid for this model, in grid order."""
        return list(self.cells)

    def plan(self, done: Mapping[str, set[str]]) -> list[RowSpec]:
        """The rows not in `done` (cell_hash -> stored scenario ids), in the order to make
        them (see `plan`)."""
        jobs = plan(self.inputs, list(self.cells.values()), done)
        if not jobs:
            return []
        cue, budget = self.inputs.task.cue, self.inputs.config.decoding.max_new_tokens
        lengths = prompt_ids(self.lm, [job.prompt for job in jobs], cue)
        return [
            RowSpec(j.cell.cell_hash, j.cell.gen_key, j.scenario.id, j.steering, len(ids) + budget)
            for j, ids in zip(jobs, lengths, strict=True)
        ]

    def rows(self, specs: list[RowSpec], stored: Stored) -> list[GenerationRow]:
        """Make (or, where `stored` holds the text, rescore) the rows of one batch."""
        scenarios = {s.id: s for s in self.inputs.scenarios}
        jobs = []
        for spec in specs:
            cell, scenario = self.cells[spec.cell_hash], scenarios[spec.scenario_id]
            prompt = cell.steerer.prompt(scenario, cell.level)
            jobs.append(Job(cell, scenario, prompt, stored.get((spec.gen_key, spec.scenario_id))))
        self._scorer = self._scorer or GenerationScorer.build(
            self.inputs.task, self.inputs.exemplars, self.inputs.split_scenarios
        )
        return _rows(self.inputs, self.lm, self._scorer, self.key, self.scorer_key, jobs)


Work = Iterator[tuple[list[RowSpec], Stored]]
"""Batches to make, pulled one at a time (a batch's rows are claimed as it is pulled)."""


class Pool(Protocol):
    """Workers of one model: plan a run and make its batches."""

    def cell_hashes(self) -> list[str]: ...

    def plan(self, done: Mapping[str, set[str]]) -> list[RowSpec]: ...

    def map(self, work: Work) -> Iterator[list[GenerationRow]]:
        """The rows of each batch of `work`, in the order they are done."""
        ...


class Executor(Protocol):
    """How a run's rows are made: where workers run and how many."""

    def pool(self, config: RunConfig, model_name: str) -> AbstractContextManager[Pool]: ...


class LocalPool:
    """One worker in this process: batches made one after another."""

    def __init__(self, worker: ModelWorker) -> None:
        self.worker = worker

    def cell_hashes(self) -> list[str]:
        return self.worker.cell_hashes()

    def plan(self, done: Mapping[str, set[str]]) -> list[RowSpec]:
        return self.worker.plan(done)

    def map(self, work: Work) -> Iterator[list[GenerationRow]]:
        for specs, stored in work:
            yield self.worker.rows(specs, stored)


class LocalExecutor:
    """The default: everything in this process."""

    @contextmanager
    def pool(self, config: RunConfig, model_name: str) -> Iterator[Pool]:
        yield LocalPool(ModelWorker(config, model_name))


def run(config: RunConfig, executor: Executor | None = None) -> RunOutcome:
    """Run every missing (cell, scenario) of the grid into `config.store`.

    Everything the user can get wrong (names, levels, hyperparameters, data, models) is
    checked before the store is opened, so a bad run leaves the store untouched. Each batch's
    rows are claimed as it is handed to a worker, so runs sharing a store split the work, and
    only this process writes the store. Rows of one method setting (any level, seed or
    scenario), or of methods that steer through their prompt alone, share batches of at most
    `batch_tokens`.
    """
    inputs = prepare(config)
    executor = executor or LocalExecutor()
    counts = Counter[str]()
    hashes: list[str] = []
    created = not Path(config.store).exists()
    try:
        _fill(config, inputs, executor, counts, hashes)
    except BaseException:
        if created:  # a run that fails before its first row leaves no store behind
            discard_if_unused(config.store)
        raise
    return RunOutcome(
        counts["already"],
        counts["written"],
        counts["rescored"],
        config.store,
        hashes,
        counts["elsewhere"],
    )


def _fill(
    config: RunConfig,
    inputs: RunInputs,
    executor: Executor,
    counts: Counter[str],
    hashes: list[str],
) -> None:
    """Make every missing row of the grid into the store, counting what was done."""
    with ResultsStore(config.store, timeout_s=config.store_timeout_s) as store:
        for model_name in config.models:
            with executor.pool(config, model_name) as pool:
                cells = pool.cell_hashes()
                hashes += cells
                specs = pool.plan({cell: store.done_scenarios(cell) for cell in cells})
                counts["already"] += len(cells) * len(inputs.scenarios) - len(specs)
                if not specs:
                    continue
                with tqdm(total=len(specs), desc=f"generating ({model_name})", unit="text") as bar:
                    work = _claimed(store, specs, config.batch_tokens, counts, bar)
                    for rows in pool.map(work):
                        with section("store"):
                            counts["written"] += store.add(rows)
                        bar.update(len(rows))


def _claimed(
    store: ResultsStore, specs: list[RowSpec], budget: int, counts: Counter[str], bar: tqdm
) -> Work:
    """The batches of `specs`, each claimed as it is pulled: the rows still ours, with the
    stored texts among them to rescore (rows another run holds are counted, not made)."""
    for batch in batches(specs, [spec.size for spec in specs], budget):
        mine = store.claim((s.cell_hash, s.scenario_id) for s in batch)
        claimed = [s for s in batch if (s.cell_hash, s.scenario_id) in mine]
        counts["elsewhere"] += len(batch) - len(claimed)
        bar.update(len(batch) - len(claimed))
        if claimed:
            stored = _stored_texts(store, claimed)
            counts["rescored"] += len(stored)
            yield claimed, stored


def _stored_texts(store: ResultsStore, specs: list[RowSpec]) -> Stored:
    """The stored texts (under another scorer) of these rows' generation keys: one indexed
    lookup per row, on the rows of the batch only."""
    stored: Stored = {}
    for spec in specs:
        for row in store.rows(gen_key=spec.gen_key, scenario_id=spec.scenario_id):
            stored[(spec.gen_key, spec.scenario_id)] = row
    return stored


def _rows(
    inputs: RunInputs,
    lm: LoadedModel,
    scorer: GenerationScorer,
    key: str,
    scorer_key: str,
    jobs: list[Job],
) -> list[GenerationRow]:
    """Generate what is not stored yet (one steering context: the jobs share a hooked
    method's setting, or use no hooks), then score everything without hooks (the unsteered
    model is the fluency reference)."""
    config = inputs.config
    steerer, steer = jobs[0].cell.steerer, dict(jobs[0].cell.setting.steer)
    made = {
        id(job): (r.text, r.n_tokens, r.finished, r.diagnostics)
        for job in jobs
        if (r := job.stored)
    }
    fresh = [job for job in jobs if job.stored is None]
    if fresh:
        levels = [job.cell.level for job in fresh]
        prompts = [job.prompt for job in fresh]
        with steerer.steering(lm, levels, **steer):  # the same for every job of the batch
            outputs = generate(
                lm,
                prompts,
                config.decoding,
                [row_seed(job.cell.seed, job.scenario.id, job.cell.level) for job in fresh],
                cue=inputs.task.cue,
                stop=inputs.task.stop,
                groups=levels,
                reach=steerer.prompt_reach(**steer),
                reuse=config.reuse_prefixes,
            )
        for setting_key in dict.fromkeys(job.cell.setting_key for job in fresh):
            mine = [k for k, job in enumerate(fresh) if job.cell.setting_key == setting_key]
            cell = fresh[mine[0]].cell
            with section("diagnostics"):
                measured = cell.steerer.diagnostics(
                    lm,
                    [levels[k] for k in mine],
                    [prompts[k] for k in mine],
                    [outputs[k].text for k in mine],
                    **dict(cell.setting.steer),
                )
            for k, diagnostic in zip(mine, measured, strict=True):
                out = outputs[k]
                made[id(fresh[k])] = (out.text, out.n_tokens, out.finished, diagnostic)
    texts = [made[id(job)][0] for job in jobs]
    commit = git_commit()
    scores = scorer.score(
        lm, [job.scenario for job in jobs], texts, [job.cell.level for job in jobs]
    )
    return [
        GenerationRow(
            cell_hash=job.cell.cell_hash,
            scenario_id=job.scenario.id,
            gen_key=job.cell.gen_key,
            run_key=key,
            setting_key=job.cell.setting_key,
            model=lm.alias,
            weights_sha256=lm.weights_sha256,
            task=inputs.task.name,
            method=job.cell.setting.method,
            role=job.cell.steerer.role or "",
            hparams=job.cell.setting.hparams,
            fingerprint=job.cell.steerer.fingerprint(),
            level=job.cell.level.value,
            seed=job.cell.seed,
            split=config.split,
            prompt=list(job.prompt),
            text=made[id(job)][0],
            n_tokens=made[id(job)][1],
            finished=made[id(job)][2],
            scores=score,
            diagnostics=made[id(job)][3],
            scorer=scorer_key,
            decoding=dataclasses.asdict(config.decoding),
            versions=versions(),
            # a rescored text keeps the commit and config that made it (its scorer says what
            # scored it)
            git_commit=job.stored.git_commit if job.stored else commit,
            config_hash=job.stored.config_hash if job.stored else config.config_hash,
        )
        for job, score in zip(jobs, scores, strict=True)
    ]


__all__ = [
    "LEVELS",
    "Executor",
    "LocalExecutor",
    "ModelWorker",
    "RunOutcome",
    "expand_settings",
    "row_seed",
    "run",
    "stable_hash",
]
