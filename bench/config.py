"""Typed run configs: dataclasses with validation, loaded from YAML plus `key=value` overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.data.levels import LEVELS, parse_level
from bench.data.scenarios import SPLITS
from bench.errors import ConfigError
from bench.models.generation import Decoding
from bench.models.loading import DTYPE_CHOICES
from bench.models.registry import DEFAULT_MODEL


@dataclass(frozen=True)
class RunConfig:
    """One experiment: the grid of cells to run and how to run them."""

    models: tuple[str, ...] = (DEFAULT_MODEL,)
    """Model aliases, local directories or HF ids (hub ids only from the local cache)."""
    methods: tuple[str, ...] = ("none", "prompting")
    """Registered method names (see `bench run --help`)."""
    levels: tuple[str, ...] = tuple(level.value for level in LEVELS)
    """Target Bloom levels."""
    layers: tuple[int, ...] = ()
    """Layers for methods that act on a layer (ignored by prompt-only methods)."""
    strengths: tuple[float, ...] = ()
    """Steering strengths for methods that take one (ignored by prompt-only methods)."""
    seeds: tuple[int, ...] = (0,)
    """Sampling seeds; each is its own grid cell."""
    split: str = "dev"
    """Scenario split to generate for: 'dev' (choosing settings) or 'test' (reporting)."""
    limit: int | None = None
    """Use only the first N scenarios of the split (smoke runs)."""
    batch_size: int = 8
    """Prompts generated together."""
    dtype: str = "auto"
    """Model dtype: auto (bfloat16 on GPU, float32 on CPU), bfloat16, float16 or float32."""
    decoding: Decoding = field(default_factory=Decoding)
    """Decoding shared by every method."""
    scenarios: str | None = None
    """Path to a scenarios JSONL to use instead of the packaged one."""
    exemplars: str | None = None
    """Path to an exemplars JSONL or CSV (text, level) to use instead of the packaged one."""
    store: str = "runs/results.sqlite"
    """SQLite results store (created if missing; resumed if present)."""

    def __post_init__(self) -> None:
        for name in ("models", "methods", "levels", "seeds"):
            if not getattr(self, name):
                raise ConfigError(f"config: '{name}' must not be empty")
        for level in self.levels:
            parse_level(level)
        if self.split not in SPLITS:
            raise ConfigError(
                f"config: split must be one of {', '.join(SPLITS)}, got {self.split!r}"
            )
        if self.limit is not None and self.limit < 1:
            raise ConfigError("config: limit must be a positive number of scenarios")
        if self.batch_size < 1:
            raise ConfigError("config: batch_size must be at least 1")
        if self.dtype not in DTYPE_CHOICES:
            raise ConfigError(f"config: dtype must be one of {', '.join(DTYPE_CHOICES)}")

    @property
    def config_hash(self) -> str:
        """sha256 (first 16 hex) of the config's canonical JSON; stored with every row."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


_TUPLE_FIELDS = {"models", "methods", "levels", "layers", "strengths", "seeds"}


def _coerce(raw: dict[str, Any], source: str) -> RunConfig:
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    values = dict(raw)
    for name in _TUPLE_FIELDS & set(values):
        item = values[name]
        values[name] = tuple(item) if isinstance(item, list | tuple) else (item,)
    if "decoding" in values:
        decoding = values["decoding"]
        if not isinstance(decoding, dict):
            raise ConfigError(f"{source}: 'decoding' must be a mapping")
        fields = {f.name for f in dataclasses.fields(Decoding)}
        if set(decoding) - fields:
            bad = ", ".join(sorted(set(decoding) - fields))
            raise ConfigError(
                f"{source}: unknown decoding key(s) {bad}; known: {', '.join(sorted(fields))}"
            )
        try:
            values["decoding"] = Decoding(**decoding)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: decoding: {error}") from None
    try:
        return RunConfig(**values)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply torchtune-style `key=value` (or `decoding.key=value`) overrides; values are YAML."""
    merged = {**raw, "decoding": dict(raw.get("decoding") or {})}
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {override!r} is not of the form key=value")
        value = yaml.safe_load(text)
        if key.startswith("decoding."):
            merged["decoding"][key.removeprefix("decoding.")] = value
        else:
            merged[key] = value
    if not merged["decoding"]:
        del merged["decoding"]
    return merged


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, **options: Any
) -> RunConfig:
    """Config from a YAML file (optional), then CLI options, then `key=value` overrides."""
    raw: dict[str, Any] = {}
    source = "options"
    if path is not None:
        source = str(path)
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            loaded = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}: malformed YAML{where}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the config must be a YAML mapping of keys to values")
        raw = loaded
    raw.update({key: value for key, value in options.items() if value is not None})
    return _coerce(apply_overrides(raw, overrides or []), source)
