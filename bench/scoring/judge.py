"""Optional LLM-judge scorer: ask any chat model which Bloom level a feedback text targets."""

from __future__ import annotations

import re

from bench.data.levels import LEVELS, Level
from bench.models.generation import Decoding, generate
from bench.models.loading import LoadedModel

_LEVEL_LIST = "\n".join(f"- {level.value}: {level.definition}" for level in LEVELS)
_PATTERN = re.compile(r"\b(" + "|".join(level.value for level in LEVELS) + r")\b", re.IGNORECASE)


def judge_messages(text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "You label teacher feedback with a Bloom's taxonomy level."},
        {
            "role": "user",
            "content": (
                "Which level of thinking does this feedback ask the student to do next?\n"
                f"{_LEVEL_LIST}\n\nFeedback: {text}\n\nAnswer with the level's name only."
            ),
        },
    ]


def parse_level_answer(answer: str) -> Level | None:
    """The first level named in the judge's answer, or None if it names none."""
    match = _PATTERN.search(answer)
    if match is None:
        return None
    return next(level for level in LEVELS if level.value.lower() == match.group(1).lower())


class LLMJudge:
    """Greedy, short answers; texts the judge can't label come back as None."""

    def __init__(self, lm: LoadedModel, batch_size: int = 8) -> None:
        self.lm = lm
        self.batch_size = batch_size

    def predict(self, texts: list[str]) -> list[Level | None]:
        decoding = Decoding(max_new_tokens=6, greedy=True)
        labels: list[Level | None] = []
        for start in range(0, len(texts), self.batch_size):
            batch = [judge_messages(t) for t in texts[start : start + self.batch_size]]
            labels += [parse_level_answer(g.text) for g in generate(self.lm, batch, decoding)]
        return labels
