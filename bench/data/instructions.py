"""The level instructions a prompting method may add to the request, as data.

They live in the data layer, not in a method, because the leakage score compares every text
with all of them (a text that recites an instruction is leaking, whoever wrote it), and the
scorer must never import a method.

Two wordings: `named` names the level and gives its definition; `described` describes the
thinking asked for without naming any taxonomy (small models recite names they are given).
"""

from __future__ import annotations

from bench.data.levels import LEVELS, Level
from bench.errors import ConfigError

WORDINGS = ("named", "described")

_DESCRIBED: dict[Level, str] = {
    Level.REMEMBER: "Ask for a fact, term, name or step they should know by heart.",
    Level.UNDERSTAND: "Ask them to put the idea in their own words or give an everyday example "
    "of it.",
    Level.APPLY: "Ask them to work out a new, concrete case with the same rule or method.",
    Level.ANALYZE: "Ask them to take the idea apart: compare it with something, or find a cause "
    "or the flaw in the reasoning.",
    Level.EVALUATE: "Ask them to judge a claim or a method and give reasons for their verdict.",
    Level.CREATE: "Ask them to come up with something new: an experiment, a problem, a plan or "
    "a design of their own.",
}


def level_instruction(level: Level, wording: str = "named") -> str:
    """The sentence that asks for a follow-up at `level` in the given wording."""
    if wording == "named":
        return (
            f"What you ask the student to do next must be at the '{level.value}' level of "
            f"Bloom's taxonomy, that is: {level.definition}."
        )
    if wording == "described":
        return _DESCRIBED[level]
    raise ConfigError(
        f"unknown instruction wording {wording!r}; choose from: {', '.join(WORDINGS)}"
    )


def all_instruction_texts() -> list[str]:
    """Every instruction in every wording, plus the bare level definitions."""
    texts = [level_instruction(level, wording) for wording in WORDINGS for level in LEVELS]
    return texts + [level.definition for level in LEVELS]
