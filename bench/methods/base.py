"""The `Steerer` protocol every method implements, and the hyperparameters it declares.

A method declares its hyperparameters (`HParam`: name, type, default, whether `fit` uses it),
so configs can sweep them and the cell key holds their normalized values; the harness never
special-cases a method by name. A method's `fingerprint()` names everything about it that
decides a text: its code, its hyperparameters and its learned artifacts.
"""

from __future__ import annotations

import hashlib
import inspect
import math
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import datasets

from bench.data.levels import Level
from bench.data.scenarios import Scenario
from bench.data.tasks import Message, Task
from bench.errors import ConfigError
from bench.models.loading import LoadedModel
from bench.models.prefill import Reach

_REQUIRED = object()


@dataclass(frozen=True)
class HParam:
    """One hyperparameter a method declares."""

    name: str
    kind: Literal["int", "float", "str", "bool", "layer"]
    """'layer' is an int normalized against the model's depth (-1 is the last layer)."""
    default: Any = _REQUIRED
    """Value when a config gives none (a missing required hyperparameter is a config error)."""
    doc: str = ""
    stage: Literal["build", "steer"] = "steer"
    """'build': given to the constructor (it may shape `fit` or `prompt`; one steerer is built
    and fit per distinct value); 'steer': given to `steering` for each generation."""
    choices: tuple[Any, ...] | None = None
    """The allowed values, if the set is closed."""

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def coerce(self, value: Any, method: str) -> Any:
        """The value in its canonical type (so 4 and 4.0 are one setting), or a ConfigError."""
        where = f"method {method!r}: {self.name}"
        try:
            if self.kind == "float":
                if isinstance(value, bool):
                    raise TypeError
                result: Any = float(value)
                if not math.isfinite(result):
                    raise ValueError
            elif self.kind in ("int", "layer"):
                if isinstance(value, bool) or float(value) != int(float(value)):
                    raise TypeError
                result = int(float(value))
            elif self.kind == "bool":
                if not isinstance(value, bool):
                    raise TypeError
                result = value
            else:
                result = str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{where} must be a finite {self.kind}, got {value!r}") from None
        if self.choices is not None and result not in self.choices:
            options = ", ".join(map(str, self.choices))
            raise ConfigError(f"{where} must be one of {options}, got {value!r}")
        return result


def normalize_layer(layer: int, n_layers: int, where: str) -> int:
    """A layer index in [0, n_layers): -1 is the last layer, so -1 and n-1 are one setting."""
    if not -n_layers <= layer < n_layers:
        raise ConfigError(f"{where}: layer {layer} out of range: the model has {n_layers} layers")
    return layer % n_layers


def source_sha256(cls: type) -> str:
    """sha256 (16 hex) of the source files that define `cls` and the methods it inherits
    from (not `Steerer` itself): the method's code version."""
    files = dict.fromkeys(
        Path(inspect.getfile(k)) for k in cls.__mro__ if issubclass(k, Steerer) and k is not Steerer
    )
    return hashlib.sha256(b"".join(path.read_bytes() for path in files)).hexdigest()[:16]


class Steerer:
    """A way to push a model's output toward a Bloom level. Subclass and declare.

    The runner builds one steerer per (model, build-stage hyperparameters), calls `fit` once,
    then for each steer-stage setting generates inside `steering(...)` from `prompt(...)`.
    Prompts come from the shared task; a method may add an instruction. One batch holds rows
    of several target levels, so `steering` takes one level per row (or one for all rows);
    a method whose `steering` edits prompt positions says which in `prompt_reach`.
    """

    name: ClassVar[str]
    hparams: ClassVar[tuple[HParam, ...]] = ()
    role: ClassVar[str | None] = None
    """'control' (the unsteered model) or 'prompting' (zero-shot prompting): the references
    every report compares methods against. None for other methods."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        declares = any("prompt_reach" in vars(k) for k in cls.__mro__ if k is not Steerer)
        if "steering" in vars(cls) and not declares:
            raise TypeError(f"{cls.__name__} overrides steering(): declare its prompt_reach()")

    def __init__(self, task: Task, **build_hparams: Any) -> None:
        self.task = task
        self.build_hparams = build_hparams

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        """Learn whatever the method needs from the exemplars (default: nothing)."""

    def prompt(self, scenario: Scenario, level: Level) -> list[Message]:
        """The chat messages to generate from (default: the task's prompt, no instruction)."""
        return self.task.messages(scenario)

    def steering(
        self, lm: LoadedModel, levels: Level | Sequence[Level], **steer_hparams: Any
    ) -> AbstractContextManager:
        """A context in which forward passes are steered toward `levels`: one level for every
        row, or one per caller row (`bench.hooks.caller_rows` maps a pass's rows to them).
        Default: no steering."""
        return nullcontext()

    @property
    def prompt_only(self) -> bool:
        """Whether the method steers through its prompt alone (no `steering` hooks): rows of
        such methods can share a batch, and so read their common prompt prefixes once."""
        return type(self).steering is Steerer.steering

    def prompt_reach(self, **steer_hparams: Any) -> Reach:
        """Which prompt positions `steering` changes per level: 'none' (default), 'last' (the
        last prompt position, which produces the first token) or 'all'. Rows of different
        levels share a prefilled prompt prefix only where their steering is alike."""
        return "none"

    def diagnostics(
        self,
        lm: LoadedModel,
        levels: list[Level],
        prompts: list[list[Message]],
        texts: list[str],
        **steer_hparams: Any,
    ) -> list[dict[str, float]]:
        """Per generated text (written toward `levels[i]`), measurements of what the steering
        did (default: none)."""
        return [{} for _ in texts]

    def artifacts(self) -> dict[str, str]:
        """sha256 of each learned artifact after `fit` (vectors, SAE files); default none."""
        return {}

    def fingerprint(self) -> dict[str, Any]:
        """Everything about this method that decides a text (goes into the cell key)."""
        return {
            "name": self.name,
            "code": source_sha256(type(self)),
            "build_hparams": self.build_hparams,
            "artifacts": self.artifacts(),
        }
