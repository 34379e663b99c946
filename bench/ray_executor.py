"""`bench run --executor ray`: a run's batches made by Ray actors, on one machine or a cluster.

Each actor is a `ModelWorker`: the model loaded once, the method settings fit, every cell
keyed. The driver (the `bench run` process) asks one actor for the plan, checks that every
actor keys the grid the same way (same code, data and weights on every node), then hands out
batches; it alone claims rows and writes the store, one batch per transaction, so a worker
that dies never leaves half a batch. A dead actor is restarted and its batch retried
(`max_restarts`); making a batch twice gives the same rows, since a row's text depends only
on its keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from bench.config import RunConfig
from bench.errors import BenchError, ConfigError
from bench.runner import ModelWorker, Pool, RowSpec, Work
from bench.store import GenerationRow

IN_FLIGHT_PER_WORKER = 2
"""Batches queued on each actor, so it starts the next one while the driver writes."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise BenchError("the Ray executor needs ray: pip install -e '.[ray]'") from None
    return ray


@dataclass(frozen=True)
class RayExecutor:
    """Where and how many Ray actors make a run's rows."""

    address: str | None = None
    """Ray cluster to join ('auto', 'ray://head:10001'); none starts a local one."""
    workers: int = 2
    """Actors per model, each holding its own copy of the model."""
    cpus_per_task: float = 1.0
    """CPU cores reserved for each actor (torch in it uses this many threads)."""
    gpus_per_task: float = 0.0
    """GPUs reserved for each actor (1 = one GPU each; 0.5 = two actors share one)."""
    max_restarts: int = 3
    """Times a dead actor (node lost, out of memory) is restarted; its batch is retried."""

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError("ray executor: --workers must be at least 1")
        if self.cpus_per_task <= 0 or self.gpus_per_task < 0:
            raise ConfigError("ray executor: cpus per task must be > 0 and gpus per task >= 0")
        if self.max_restarts < 0:
            raise ConfigError("ray executor: max_restarts must not be negative")

    @contextmanager
    def pool(self, config: RunConfig, model_name: str) -> Iterator[Pool]:
        ray = _ray()
        started = not ray.is_initialized()
        if started:
            ray.init(
                address=self.address,
                include_dashboard=False,
                log_to_driver=False,
                logging_level="ERROR",
            )
        actor = ray.remote(ModelWorker).options(
            num_cpus=self.cpus_per_task,
            num_gpus=self.gpus_per_task,
            max_restarts=self.max_restarts,
            max_task_retries=self.max_restarts,
        )
        actors = [actor.remote(config, model_name) for _ in range(self.workers)]
        try:
            yield RayPool(ray, actors)
        finally:
            for handle in actors:
                ray.kill(handle, no_restart=True)
            if started:
                ray.shutdown()


class RayPool:
    """The actors of one model, used by `bench.runner.run` like the local worker."""

    def __init__(self, ray: Any, actors: list[Any]) -> None:
        self.ray = ray
        self.actors = actors

    def _get(self, refs: Any) -> Any:
        """`ray.get`, with a worker's failure as one line."""
        try:
            return self.ray.get(refs)
        except self.ray.exceptions.RayTaskError as error:
            cause = error.cause if isinstance(error.cause, Exception) else error
            if isinstance(cause, BenchError):
                raise cause from None
            raise BenchError(f"a Ray worker failed: {type(cause).__name__}: {cause}") from None
        except self.ray.exceptions.RayActorError as error:
            first = str(error).strip().splitlines()[0] if str(error).strip() else "no reason given"
            raise BenchError(f"a Ray worker died and could not be restarted: {first}") from None

    def cell_hashes(self) -> list[str]:
        keyed = self._get([handle.cell_hashes.remote() for handle in self.actors])
        if any(hashes != keyed[0] for hashes in keyed):
            raise BenchError(
                "Ray workers key the grid differently: every node needs the same bench code, "
                "data, model weights and SAE files"
            )
        return keyed[0]

    def plan(self, done: Mapping[str, set[str]]) -> list[RowSpec]:
        return self._get(self.actors[0].plan.remote(dict(done)))

    def map(self, work: Work) -> Iterator[list[GenerationRow]]:
        """Keep every actor busy with up to `IN_FLIGHT_PER_WORKER` batches; yield each
        batch's rows as it finishes. A batch is pulled from `work` (and so claimed) only
        when an actor has room for it."""
        pending = iter(work)
        in_flight: dict[Any, Any] = {}

        def submit(handle: Any) -> bool:
            batch = next(pending, None)
            if batch is None:
                return False
            in_flight[handle.rows.remote(*batch)] = handle
            return True

        for _ in range(IN_FLIGHT_PER_WORKER):
            for handle in self.actors:
                submit(handle)
        while in_flight:
            [ready], _ = self.ray.wait(list(in_flight), num_returns=1)
            handle = in_flight.pop(ready)
            rows = self._get(ready)
            submit(handle)
            yield rows
