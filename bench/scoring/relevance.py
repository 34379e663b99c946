"""Relevance: cosine similarity between the feedback and its scenario (question + answer)."""

from __future__ import annotations

import numpy as np


def scenario_text(question: str, student_answer: str) -> str:
    return f"{question} {student_answer}"


def relevance(feedback: np.ndarray, scenarios: np.ndarray) -> list[float]:
    """Cosine similarity of each feedback embedding to its scenario's, in [-1, 1] (unit rows)."""
    return [float(x) for x in np.sum(feedback * scenarios, axis=1)]
