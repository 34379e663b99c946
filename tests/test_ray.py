"""The Ray executor makes the same store as the local one, resumes like it, and keeps bad
executor options to one line. Runs on a local Ray cluster of 2 CPUs (ray installs from PyPI)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import main
from bench.config import load_config
from bench.errors import ConfigError
from bench.runner import run
from bench.store import ResultsStore

ray = pytest.importorskip("ray", reason="the Ray executor's tests need ray (the dev extra)")

from bench.ray_executor import RayExecutor  # noqa: E402  (after the importorskip)

GRID = [
    "models=[tiny-llama]",
    "methods=[none,prompting,caa]",
    "hparams.caa={layer: 1, coefficient: 8.0}",
    "levels=[Remember,Create]",
    "seeds=[0,1]",
    "batch_tokens=600",  # several batches, so both actors get work
]


@pytest.fixture(scope="module")
def cluster(private_cache: Path) -> Iterator[None]:
    """A local Ray cluster of 2 CPUs; its workers inherit BENCH_CACHE from this process."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _rows(store: Path) -> dict[tuple[str, str], dict]:
    """Every row by key, all it says but when it was made."""
    with ResultsStore(store, read_only=True) as results:
        return {
            (r.cell_hash, r.scenario_id): {**asdict(r), "created_at": ""} for r in results.rows()
        }


def test_two_ray_workers_make_the_store_the_local_executor_makes(
    cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every row the same: keys, texts, diagnostics and provenance exactly (the two stores
    have one relative path, in two folders, so even the config hash agrees), scores to the
    last digit of their rounding."""
    config = load_config(overrides=[*GRID, "limit=3", "store=grid.sqlite"])
    (tmp_path / "local").mkdir()
    (tmp_path / "ray").mkdir()
    monkeypatch.chdir(tmp_path / "local")
    made = run(config)
    assert made.written == 3 * 2 * 2 * 3
    monkeypatch.chdir(tmp_path / "ray")
    summary = run(config, RayExecutor(workers=2))
    assert (summary.already_done, summary.written) == (0, made.written)
    local = _rows(tmp_path / "local" / "grid.sqlite")
    remote = _rows(tmp_path / "ray" / "grid.sqlite")
    assert remote.keys() == local.keys()
    for key, row in local.items():
        other = remote[key]
        assert {**other, "scores": {}} == {**row, "scores": {}}  # texts, keys, provenance
        # float scores can differ in their last rounded digit: an actor's torch runs on its
        # own thread count (1 here, 2 in this process), which reorders float sums
        for name, value in row["scores"].items():  # level_probs: a flat mapping of floats
            if isinstance(value, float | dict):
                assert other["scores"][name] == pytest.approx(value, rel=1e-4, abs=2e-5)
            else:
                assert other["scores"][name] == value, name


def test_a_ray_run_resumes_a_local_one_and_writes_only_the_rest(
    cluster: None, tmp_path: Path
) -> None:
    store = tmp_path / "grid.sqlite"
    run(load_config(overrides=[*GRID, "limit=1", f"store={store}"]))
    summary = run(
        load_config(overrides=[*GRID, "limit=2", f"store={store}"]), RayExecutor(workers=2)
    )
    assert (summary.already_done, summary.written) == (12, 12)
    again = run(load_config(overrides=[*GRID, "limit=2", f"store={store}"]))
    assert (again.already_done, again.written) == (24, 0)


def test_executor_settings_are_checked_before_anything_runs() -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        RayExecutor(workers=0)
    with pytest.raises(ConfigError, match="gpus per task"):
        RayExecutor(gpus_per_task=-1)


def test_ray_options_without_the_ray_executor_are_one_line(tmp_path: Path) -> None:
    store = tmp_path / "never.sqlite"
    result = CliRunner().invoke(
        main, ["run", "--workers", "4", "--gpus-per-task", "1", *GRID, f"store={store}"]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --workers, --gpus-per-task only apply with --executor ray"
    ]
    assert not store.exists()
