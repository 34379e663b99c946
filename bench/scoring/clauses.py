"""Find the clause of a text that sets the task (what the student is asked to do next).

A level is decided by the thinking the text asks for next, not by every verb in it: in
"Let's analyze your answer: first, write down the formula from memory" the task is "write down
the formula from memory" (Remember), and "analyze" is framing. The scorer reads verbs only in
this clause, and embeds it beside the whole text.

Heuristic and cheap: split into sentences, prefer questions and imperatives over statements
("You'll need it when we design..." sets nothing), then drop framing before a colon or dash
and a leading purpose clause ("To evaluate this, ...").
"""

from __future__ import annotations

import re

import numpy as np

_SENTENCES = re.compile(r"(?<=[.!?])\s+(?=\S)")
_FRAME_SPLIT = re.compile(r"\s*(?::|;|\s[—–-]\s)\s*")
_PURPOSE = re.compile(r"^(?:to|before|after|once|when|while|as|if)\b[^,]{0,80},\s*", re.IGNORECASE)
_LEAD = re.compile(
    r"^(?:(?:now|next|then|first|finally|so|ok(?:ay)?|great|good|nice|right|also|and|but|just)"
    r"\b[,!.]?\s*)+",
    re.IGNORECASE,
)
_STATEMENT_START = re.compile(
    r"^(?:you(?:'ll|'ve|'re| will| have| are| did| were| used| made)|i\b|i'm|we(?:'ll| will)"
    r"|this|that|it|it's|there|your\s+\w+\s+(?:is|was|are|were|shows?))\b",
    re.IGNORECASE,
)
_ASKING = re.compile(
    r"^(?:what|which|who|whom|whose|when|where|why|how|can|could|would|will|do|does|did|is|"
    r"are|was|were|should|if|suppose|imagine|let's|please|try|don't|do not)\b",
    re.IGNORECASE,
)


def _strip(clause: str) -> str:
    return _LEAD.sub("", clause.strip()).strip()


def _task_weight(sentence: str) -> int:
    """How strongly a sentence looks like it sets the task."""
    core = _strip(sentence)
    if not core:
        return 0
    weight = 2 if sentence.rstrip().endswith("?") else 0
    if _STATEMENT_START.match(core):
        return weight
    return weight + (2 if _ASKING.match(core) else 1)


def task_clause(text: str) -> str:
    """The part of `text` that sets the task (the whole text when nothing better is found)."""
    sentences = [s for s in _SENTENCES.split(text.strip()) if s.strip()]
    if not sentences:
        return text.strip()
    # The strongest task sentence; among equals the last (a task usually ends feedback).
    best = max(range(len(sentences)), key=lambda i: (_task_weight(sentences[i]), i))
    # Framing comes before a colon or dash: the last part that asks or tells is the task.
    parts = [p for p in _FRAME_SPLIT.split(sentences[best]) if _strip(p)]
    asking = [p for p in parts if _task_weight(p) > 0]
    clause = (asking or parts or [sentences[best]])[-1]
    clause = _strip(_PURPOSE.sub("", _strip(clause)))
    return clause or text.strip()


_YOU = re.compile(r"\b(?:you|your|yours|yourself)\b", re.IGNORECASE)


def form_features(texts: list[str]) -> np.ndarray:
    """[n, 4] per text: its task clause ends with '?'; opens like a question or request; its
    strongest sentence's task weight (0-4, scaled to 0-1); the text says 'you'."""
    rows = []
    for text in texts:
        clause = task_clause(text)
        sentences = [s for s in _SENTENCES.split(text.strip()) if s.strip()] or [text]
        rows.append(
            [
                float(clause.rstrip().endswith("?")),
                float(_ASKING.match(_strip(clause)) is not None),
                max(_task_weight(s) for s in sentences) / 4,
                float(_YOU.search(text) is not None),
            ]
        )
    return np.array(rows, dtype=float).reshape(len(texts), 4)
