"""Zero-shot prompting: the instruction names the target Bloom level and defines it."""

from __future__ import annotations

from typing import ClassVar

from bench.data.levels import Level
from bench.data.prompts import Message, feedback_messages
from bench.data.scenarios import Scenario
from bench.methods.base import PromptOnly


def level_instruction(level: Level) -> str:
    """The sentence that asks for feedback at `level`."""
    return (
        f"The thing you ask the student to do next must be at the '{level.value}' level of "
        f"Bloom's taxonomy, that is: {level.definition}."
    )


class ZeroShotPrompting(PromptOnly):
    """Steer by asking: the control's prompt plus one instruction naming and defining the level."""

    name: ClassVar[str] = "prompting"

    def prompt(self, scenario: Scenario, level: Level) -> list[Message]:
        return feedback_messages(scenario, instruction=level_instruction(level))
