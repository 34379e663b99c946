"""Bloom's revised taxonomy: the six levels, their definitions for feedback, signature verbs."""

from __future__ import annotations

import re
from enum import StrEnum

from bench.errors import UnknownNameError


class Level(StrEnum):
    """A Bloom level; its value is the capitalized name used in data files and results."""

    REMEMBER = "Remember"
    UNDERSTAND = "Understand"
    APPLY = "Apply"
    ANALYZE = "Analyze"
    EVALUATE = "Evaluate"
    CREATE = "Create"

    @property
    def index(self) -> int:
        """0 for Remember ... 5 for Create (the order of the taxonomy)."""
        return LEVELS.index(self)

    @property
    def definition(self) -> str:
        """What feedback at this level asks the student to do next."""
        return DEFINITIONS[self]


LEVELS: tuple[Level, ...] = tuple(Level)

DEFINITIONS: dict[Level, str] = {
    Level.REMEMBER: "ask the student to recall or recognize a fact, term, definition or step "
    "from memory",
    Level.UNDERSTAND: "ask the student to explain an idea in their own words, give its meaning, "
    "an example or a summary",
    Level.APPLY: "ask the student to use a known rule, method or concept on a new concrete case",
    Level.ANALYZE: "ask the student to break the idea into parts, compare, find causes, patterns "
    "or where the reasoning went wrong",
    Level.EVALUATE: "ask the student to judge, critique or justify a claim, method or answer "
    "against criteria",
    Level.CREATE: "ask the student to produce something new: design, invent, propose or compose "
    "an original plan, problem or solution",
}

SIGNATURE_VERBS: dict[Level, tuple[str, ...]] = {
    Level.REMEMBER: (
        "define",
        "list",
        "recall",
        "name",
        "state",
        "identify",
        "memorize",
        "repeat",
        "label",
        "recognize",
    ),
    Level.UNDERSTAND: (
        "explain",
        "describe",
        "summarize",
        "paraphrase",
        "interpret",
        "classify",
        "discuss",
        "restate",
    ),
    Level.APPLY: (
        "apply",
        "use",
        "solve",
        "calculate",
        "compute",
        "demonstrate",
        "implement",
        "execute",
    ),
    Level.ANALYZE: (
        "analyze",
        "analyse",
        "compare",
        "contrast",
        "distinguish",
        "differentiate",
        "examine",
        "categorize",
        "investigate",
    ),
    Level.EVALUATE: (
        "evaluate",
        "judge",
        "justify",
        "critique",
        "assess",
        "argue",
        "defend",
        "appraise",
        "recommend",
    ),
    Level.CREATE: (
        "create",
        "design",
        "compose",
        "construct",
        "invent",
        "propose",
        "formulate",
        "devise",
        "develop",
        "plan",
    ),
}


def _inflections(verb: str) -> set[str]:
    """The verb's regular inflections: define -> define, defines, defined, defining."""
    if verb.endswith("y"):
        return {verb, verb[:-1] + "ies", verb[:-1] + "ied", verb + "ing"}
    if verb.endswith("e"):
        return {verb, verb + "s", verb + "d", verb[:-1] + "ing"}
    doubled = verb + verb[-1] if verb in {"plan"} else verb
    return {verb, verb + "s", verb + "es", doubled + "ed", doubled + "ing"}


_VERB_PATTERNS: dict[Level, re.Pattern[str]] = {
    level: re.compile(
        r"\b(?:" + "|".join(sorted(f for v in verbs for f in _inflections(v))) + r")\b",
        re.IGNORECASE,
    )
    for level, verbs in SIGNATURE_VERBS.items()
}


def has_signature_verb(text: str, level: Level) -> bool:
    """Whether `text` contains one of `level`'s signature verbs in any inflection."""
    return _VERB_PATTERNS[level].search(text) is not None


def parse_level(name: str) -> Level:
    """`Level` from a case-insensitive name; raises `UnknownNameError` with the valid names."""
    for level in LEVELS:
        if level.value.lower() == name.strip().lower():
            return level
    valid = ", ".join(level.value for level in LEVELS)
    raise UnknownNameError(f"unknown Bloom level {name!r}; choose from: {valid}")
