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


def test_types_are_strict_but_an_integer_is_a_number() -> None:
    from bench.errors import ConfigError

    # Decoding is checked where a config builds it (its module is one the scorer fingerprints)
    assert load_config(None, ["decoding.temperature=1"]).decoding.temperature == 1
    with pytest.raises(ConfigError, match="max_new_tokens must be an integer, got True"):
        load_config(None, ["decoding.max_new_tokens=true"])  # a boolean is never a number
    with pytest.raises(ConfigError, match="greedy must be true or false, got 0"):
        load_config(None, ["decoding.greedy=0"])  # nor a number a boolean
    config = load_config(None, ["seeds=[0, 1]", "limit=null"])
    assert config.seeds == (0, 1) and config.limit is None
