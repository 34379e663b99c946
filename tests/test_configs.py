"""Every committed config loads and expands into settings (a typo in a sweep is caught here,
not an hour into a run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.config import load_config
from bench.runner import expand_settings

CONFIGS = sorted((Path(__file__).parent.parent / "configs").rglob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_committed_config_expands(path: Path) -> None:
    settings = expand_settings(load_config(str(path)))
    assert settings and {s.method for s in settings} == set(load_config(str(path)).methods)
