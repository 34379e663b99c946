"""The unsteered control: the plain feedback prompt, no target level, no hooks."""

from __future__ import annotations

from typing import ClassVar

from bench.data.levels import Level
from bench.data.prompts import Message, feedback_messages
from bench.data.scenarios import Scenario
from bench.methods.base import PromptOnly


class Unsteered(PromptOnly):
    """What the model writes with no steering: the baseline every method must beat."""

    name: ClassVar[str] = "none"

    def prompt(self, scenario: Scenario, level: Level) -> list[Message]:
        return feedback_messages(scenario)
