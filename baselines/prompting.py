"""Zero-shot prompting: the task's prompt plus one instruction asking for the target level."""

from __future__ import annotations

from typing import ClassVar

from bench.data.instructions import WORDINGS, level_instruction
from bench.data.levels import Level
from bench.data.scenarios import Scenario
from bench.data.tasks import Message
from bench.methods.base import HParam, Steerer


class ZeroShotPrompting(Steerer):
    """Steer by asking: `named` names and defines the level, `described` describes the
    thinking asked for without naming a taxonomy."""

    name: ClassVar[str] = "prompting"
    role: ClassVar[str | None] = "prompting"
    hparams: ClassVar[tuple[HParam, ...]] = (
        HParam(
            "wording",
            "str",
            "named",
            "How the instruction asks for the level.",
            stage="build",
            choices=WORDINGS,
        ),
    )

    def prompt(self, scenario: Scenario, level: Level) -> list[Message]:
        instruction = level_instruction(level, self.build_hparams["wording"])
        return self.task.messages(scenario, instruction=instruction)
