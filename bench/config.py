"""Typed run configs: dataclasses with validation, loaded from YAML plus `key=value` overrides."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

import yaml

from bench.data.files import DEFAULT_ENCODING, check_encoding
from bench.data.levels import LEVELS, parse_level
from bench.data.scenarios import SPLITS
from bench.data.tasks import DEFAULT_TASK, Task, task_from_config
from bench.errors import ConfigError
from bench.methods.registry import method_class
from bench.models.generation import Decoding
from bench.models.loading import DTYPE_CHOICES
from bench.models.registry import DEFAULT_MODEL
from bench.typecheck import check_types, check_values

T = TypeVar("T")


@dataclass(frozen=True)
class RunConfig:
    """One experiment: the grid of cells to run and how to run them."""

    models: tuple[str, ...] = (DEFAULT_MODEL,)
    """Model aliases, local directories or HF ids (hub ids only from the local cache)."""
    methods: tuple[str, ...] = ("none", "prompting")
    """Registered method names (see `bench run --help`)."""
    levels: tuple[str, ...] = tuple(level.value for level in LEVELS)
    """Target Bloom levels."""
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per method, its hyperparameters: a value or a list of values to sweep, e.g.
    `{prompting: {wording: [named, described]}}`. Undeclared ones take their defaults."""
    task: str | dict[str, Any] = DEFAULT_TASK
    """What every method writes: a registered task ('question', 'feedback') or a mapping of
    task fields (system, request, cue, stop, form, base) for tuning the wording."""
    seeds: tuple[int, ...] = (0,)
    """Sampling seeds; each is its own grid cell."""
    split: str = "dev"
    """Scenario split to generate for: 'dev' (choosing settings), 'test' (reporting) or
    'exemplar' (the exemplars' own scenarios: the scorer's training data, never results)."""
    limit: int | None = None
    """Use only the first N scenarios of the split (smoke runs)."""
    batch_tokens: int = 32768
    """Rows generated together: as many rows of one steering context (a hooked method's
    setting, or every method that steers by prompt alone) as fit this many tokens (each row
    counts its prompt plus max_new_tokens). It decides speed and memory, never a text: a
    row's text does not depend on its batch-mates."""
    reuse_prefixes: bool = True
    """Read each prompt prefix a batch's rows share once (off: every row reads its whole
    prompt). Never changes a text; off is for checking a new method's `prompt_reach`."""
    dtype: str = "auto"
    """Model dtype: auto (bfloat16 on GPU, float32 on CPU), bfloat16, float16 or float32."""
    decoding: Decoding = field(default_factory=Decoding)
    """Decoding shared by every method."""
    scenarios: str | None = None
    """Path to a scenarios JSONL to use instead of the packaged one."""
    exemplars: str | None = None
    """Path to an exemplars JSONL or CSV (text, level) to use instead of the packaged one."""
    encoding: str = DEFAULT_ENCODING
    """Text encoding of the `scenarios` and `exemplars` files given (e.g. latin-1)."""
    store: str = "runs/results.sqlite"
    """SQLite results store (created if missing; resumed if present)."""
    store_timeout_s: float = 60.0
    """How long a write waits while another process holds the store before the run stops
    with "in use" (runs sharing a store split its rows; their writes take milliseconds)."""

    def __post_init__(self) -> None:
        check_types(self, "config")
        for name in ("models", "methods", "levels", "seeds"):
            if not getattr(self, name):
                raise ConfigError(f"config: '{name}' must not be empty")
        for level in self.levels:
            parse_level(level)
        for seed in self.seeds:
            if not -(2**63) <= seed < 2**63:
                raise ConfigError(f"config: a seed must fit in 64 bits (signed), got {seed}")
        if self.split not in SPLITS:
            raise ConfigError(
                f"config: split must be one of {', '.join(SPLITS)}, got {self.split!r}"
            )
        if self.limit is not None and self.limit < 1:
            raise ConfigError("config: limit must be a positive number of scenarios")
        if self.batch_tokens < 1:
            raise ConfigError("config: batch_tokens must be at least 1")
        if self.store_timeout_s < 0:
            raise ConfigError("config: store_timeout_s must not be negative")
        check_encoding(self.encoding)
        if self.dtype not in DTYPE_CHOICES:
            raise ConfigError(f"config: dtype must be one of {', '.join(DTYPE_CHOICES)}")
        for method in self.methods:
            method_class(method)
        self.sweeps()  # validates the hyperparameters
        _ = self.task_spec

    @property
    def task_spec(self) -> Task:
        """The task this config names or defines."""
        return task_from_config(self.task)

    def sweeps(self) -> dict[str, dict[str, tuple[Any, ...]]]:
        """Per method of the run, each declared hyperparameter's values (coerced, in order)."""
        if not isinstance(self.hparams, dict):
            raise ConfigError("config: 'hparams' must map method names to their settings")
        for method, given in self.hparams.items():
            declared = {h.name for h in method_class(method).hparams}
            if not isinstance(given, dict):
                raise ConfigError(f"config: hparams.{method} must be a mapping")
            unknown = sorted(set(given) - declared)
            if unknown:
                known = ", ".join(sorted(declared)) or "none"
                raise ConfigError(
                    f"config: method {method!r} has no hyperparameter(s) {', '.join(unknown)}; "
                    f"it declares: {known}"
                )
        result = {}
        for method in self.methods:
            given = self.hparams.get(method, {})
            axes = {}
            for hparam in method_class(method).hparams:
                if hparam.name in given:
                    raw = given[hparam.name]
                    values = raw if isinstance(raw, list | tuple) else [raw]
                elif hparam.required:
                    raise ConfigError(
                        f"config: method {method!r} needs hparams.{method}.{hparam.name}"
                        + (f" ({hparam.doc})" if hparam.doc else "")
                    )
                else:
                    values = [hparam.default]
                if not values:
                    raise ConfigError(f"config: hparams.{method}.{hparam.name} is an empty list")
                coerced = [hparam.coerce(value, method) for value in values]
                axes[hparam.name] = tuple(dict.fromkeys(coerced))
            result[method] = axes
        return result

    @property
    def config_hash(self) -> str:
        """sha256 (first 16 hex) of the config's canonical JSON; stored with every row."""
        payload = json.dumps(dataclasses.asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


_TUPLE_FIELDS = {"models", "methods", "levels", "seeds"}


def _coerce(raw: dict[str, Any], source: str) -> RunConfig:
    known = {f.name for f in dataclasses.fields(RunConfig)}
    unknown = sorted(set(raw) - known)
    if "batch_size" in unknown:
        raise ConfigError(
            f"{source}: batch_size is now batch_tokens (a token budget per batch; "
            f"default {RunConfig.batch_tokens})"
        )
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
        check_values(Decoding, decoding, "decoding")  # before Decoding compares them
        for key in ("temperature", "top_p"):
            value = decoding.get(key)
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{source}: decoding: {key} must be a finite number, got {value}")
        try:
            values["decoding"] = Decoding(**decoding)
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{source}: decoding: {error}") from None
    try:
        return RunConfig(**values)
    except TypeError as error:
        raise ConfigError(f"{source}: {error}") from None


def _cast(value: Any, kind: Any, where: str) -> Any:
    """`value` as the plain type (bool, int, float, str) of an annotation, when it has one."""
    base = next((t for t in (bool, int, float, str) if t is kind or t in get_args(kind)), None)
    if value is None or base is None or type(value) is base:
        return value
    try:
        if base is bool or isinstance(value, bool):
            raise ValueError
        if base is int:
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        return base(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where} must be {base.__name__}, got {value!r}") from None


def settings_from(cls: type[T], raw: dict[str, Any], where: str) -> T:
    """A settings dataclass from `key=value` pairs, each value cast to its field's type
    (YAML reads 4e-4 as text); unknown keys and bad values are ConfigErrors."""
    hints = get_type_hints(cls)
    unknown = sorted(set(raw) - set(hints))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(hints)}"
        )
    values = {key: _cast(value, hints[key], f"{where}: {key}") for key, value in raw.items()}
    try:
        return cls(**values)
    except TypeError as error:
        raise ConfigError(f"{where}: {error}") from None


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply torchtune-style `key=value` overrides; values are YAML and dotted keys reach into
    mappings (`decoding.temperature=1.0`, `hparams.prompting.wording=[named,described]`)."""
    merged = json.loads(json.dumps(raw, default=list))  # a deep copy the overrides may change
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {override!r} is not of the form key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"override {override!r}: the value is not valid YAML") from None
        *path, last = key.split(".")
        target = merged
        for part in path:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {override!r}: {part!r} is not a mapping")
            target = child
        target[last] = value
    return merged


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (the later one would
    silently win)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


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
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text (byte {error.start})") from None
        try:
            loaded = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark else ""
            problem = getattr(error, "problem", "")
            what = problem if problem and problem.startswith("duplicate key") else "malformed YAML"
            raise ConfigError(f"{path}: {what}{where}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the config must be a YAML mapping of keys to values")
        raw = loaded
    raw.update({key: value for key, value in options.items() if value is not None})
    return _coerce(apply_overrides(raw, overrides or []), source)
