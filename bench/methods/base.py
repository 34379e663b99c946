"""The `Steerer` protocol: every method (baseline or paper method) implements it."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import ClassVar, Protocol, runtime_checkable

import datasets

from bench.data.levels import Level
from bench.data.prompts import Message
from bench.data.scenarios import Scenario
from bench.models.loading import LoadedModel


@runtime_checkable
class Steerer(Protocol):
    """A way to push a model's feedback toward a Bloom level.

    The runner builds one steerer per (model, layer), calls `fit` once, then for each
    target level and strength generates inside `steering(...)` from `prompt(...)`.
    """

    name: ClassVar[str]
    hyperparameters: ClassVar[tuple[str, ...]]
    """Which grid axes the method uses: a subset of ("layer", "strength")."""

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        """Learn whatever the method needs from the exemplar split (may do nothing)."""

    def prompt(self, scenario: Scenario, level: Level) -> list[Message]:
        """The chat messages to generate from."""

    def steering(
        self, lm: LoadedModel, level: Level, strength: float | None
    ) -> AbstractContextManager:
        """A context in which the model's forward passes are steered toward `level`."""


class PromptOnly:
    """Mixin for methods that steer through the prompt alone: nothing to fit, no hooks."""

    hyperparameters: ClassVar[tuple[str, ...]] = ()

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        """Nothing to learn."""

    def steering(
        self, lm: LoadedModel, level: Level, strength: float | None
    ) -> AbstractContextManager:
        return nullcontext()
