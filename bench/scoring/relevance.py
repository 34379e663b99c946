"""Relevance: cosine similarity between the feedback and its scenario (question + answer)."""

from __future__ import annotations

import numpy as np

from bench.scoring.embeddings import SentenceEncoder


def scenario_text(question: str, student_answer: str) -> str:
    return f"{question} {student_answer}"


def relevance(encoder: SentenceEncoder, feedback: list[str], scenarios: list[str]) -> list[float]:
    """Cosine similarity of each feedback to its scenario text, in [-1, 1]."""
    a = encoder.encode(feedback)
    b = encoder.encode(scenarios)
    return [float(x) for x in np.sum(a * b, axis=1)]
