"""Instruction leakage: a text that names the taxonomy, recites instruction text, or talks
about "the student" instead of to them.

Small models asked for a level often recite the request ("a question at the Analyze level of
Bloom's taxonomy asks the student to..."), which a level classifier rewards. Leakage is
measured against one fixed reference set for every method: the task's prompt, every level
instruction in every wording, the level definitions and the exemplar texts (what few-shot
prompts show). Texts are compared after lower-casing and replacing punctuation by spaces, so
changing case or punctuation does not hide a recital. Word runs that ordinary teacher
language also uses ("give an everyday example of", "in your own words") are not recitals:
runs found in the scorer's own teacher texts are left out of the instruction set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_LEVEL_WORDS = r"(?:remember|understand|apply|analy[sz]e|evaluate|create)"
_LABEL_PATTERNS = [
    re.compile(pattern, re.IGNORECASE)
    for pattern in (
        r"\bbloom'?s?\b",
        r"\btaxonom(?:y|ies)\b",
        r"\b(?:higher|lower)[- ]order (?:thinking|question)",
        r"\bcognitive (?:level|domain|skill)s?\b",
        rf"\b{_LEVEL_WORDS}\W{{0,3}}(?:level|stage|category|tier)\b",
        rf"\blevels?\W{{0,3}}(?:of\W{{1,3}})?['\"‘“]?{_LEVEL_WORDS}\b",
        rf"['\"‘“]{_LEVEL_WORDS}['\"’”]",
    )
]
# A capitalized level name used as a heading: "Analyze: which ...".
_HEADING = re.compile(r"(?:^|[.!?]\s+)(?:Remember|Understand|Apply|Analy[sz]e|Evaluate|Create)\s*:")
_THIRD_PERSON = re.compile(
    r"\b(?:the|this|that|a|each|every)\s+(?:students?|learners?|pupils?)\b"
    r"|\bstudents?'s?\s+(?:answer|response|understanding)\b"
    r"|\bfollow[- ]?up questions?\b",
    re.IGNORECASE,
)


def normalize_words(text: str) -> list[str]:
    """Lower-cased words with punctuation (hyphens, quotes, apostrophes) turned into spaces."""
    return re.sub(r"[^\w\s]|_", " ", text.lower()).split()


def names_taxonomy(text: str) -> bool:
    """Names Bloom's taxonomy, a level as a label, or the idea of a cognitive level."""
    return any(p.search(text) for p in _LABEL_PATTERNS) or _HEADING.search(text) is not None


def talks_about_student(text: str) -> bool:
    """Refers to "the student" (or the follow-up question itself) instead of speaking to them."""
    return _THIRD_PERSON.search(text) is not None


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class ReferenceSet:
    """Texts a generation must not recite, each group with the shortest run that counts."""

    instructions: tuple[str, ...]
    """The task prompt, every level instruction and definition: a run of `instruction_run`
    words copied from any of them is a recital."""
    exemplars: tuple[str, ...] = ()
    """Exemplar texts: a copied run must be longer (`exemplar_run`), since questions on one
    topic share short phrases."""
    common: tuple[str, ...] = ()
    """Ordinary teacher texts: instruction runs they contain are common language."""
    instruction_run: int = 4
    exemplar_run: int = 8

    def __post_init__(self) -> None:
        instruction = self._grams(self.instructions, self.instruction_run)
        common = self._grams(self.common, self.instruction_run)
        object.__setattr__(self, "_instruction_grams", instruction - common)
        object.__setattr__(self, "_exemplar_grams", self._grams(self.exemplars, self.exemplar_run))

    @staticmethod
    def _grams(texts: Iterable[str], n: int) -> frozenset[tuple[str, ...]]:
        grams: set[tuple[str, ...]] = set()
        for text in texts:
            grams |= _ngrams(normalize_words(text), n)
        return frozenset(grams)

    def recites(self, text: str) -> bool:
        """Whether the text copies a long enough word run from a reference text."""
        words = normalize_words(text)
        return bool(
            _ngrams(words, self.instruction_run) & self._instruction_grams  # type: ignore[attr-defined]
            or _ngrams(words, self.exemplar_run) & self._exemplar_grams  # type: ignore[attr-defined]
        )

    def leakage(self, text: str) -> dict[str, bool]:
        """Each leakage criterion, and `leaks` = any of them."""
        flags = {
            "leak_names_taxonomy": names_taxonomy(text),
            "leak_recites": self.recites(text),
            "leak_third_person": talks_about_student(text),
        }
        return {**flags, "leaks": any(flags.values())}
