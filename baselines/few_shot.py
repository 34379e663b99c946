"""Few-shot prompting: k exemplars of the target level, shown as earlier chat turns.

Each shot is a full earlier exchange: the task's request for the exemplar's own scenario, and
the assistant's reply opened by the same cue the model will continue. Turns show exactly the
format the model must produce, where examples pasted into the instruction invite recitation.
Shots come from the exemplars' separate scenarios (never the evaluated one) and are chosen by
a hash of (scenario, level, k), so every scenario sees its own, reproducible shots.
"""

from __future__ import annotations

import hashlib
from typing import ClassVar

import datasets

from bench.data.levels import Level
from bench.data.scenarios import Scenario
from bench.data.tasks import Message
from bench.errors import DataError
from bench.methods.activations import exemplar_scenario
from bench.methods.base import HParam, Steerer
from bench.models.loading import LoadedModel


class FewShotPrompting(Steerer):
    """Steer by example: earlier turns whose replies are at the target level."""

    name: ClassVar[str] = "few_shot"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam("k", "int", 3, "exemplars of the target level shown", "build"),
    )

    def fit(self, lm: LoadedModel, exemplars: datasets.Dataset) -> None:
        self.by_level: dict[str, list[dict]] = {}
        for row in exemplars:
            self.by_level.setdefault(row["level"], []).append(row)
        k = self.build_hparams["k"]
        if k < 1 or any(len(rows) < k + 1 for rows in self.by_level.values()):
            raise DataError(f"few_shot needs k >= 1 and more than k exemplars per level (k={k})")

    def shots(self, scenario: Scenario, level: Level) -> list[dict]:
        """The k exemplars shown for this scenario and level."""
        k = self.build_hparams["k"]
        candidates = [r for r in self.by_level[level.value] if r["question"] != scenario.question]

        def order(row: dict) -> str:
            return hashlib.sha256(
                f"{scenario.id}:{level.value}:{k}:{row['id']}".encode()
            ).hexdigest()

        return sorted(candidates, key=order)[:k]

    def prompt(self, scenario: Scenario, level: Level) -> list[Message]:
        system, request = self.task.messages(scenario)
        turns: list[Message] = [system]
        for row in self.shots(scenario, level):
            _, shot_request = self.task.messages(exemplar_scenario(row))
            reply = f"{self.task.cue} {row['text']}".strip()
            turns += [shot_request, {"role": "assistant", "content": reply}]
        return [*turns, request]
