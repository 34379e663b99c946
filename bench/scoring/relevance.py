"""Relevance by retrieval: does the text point back to its own scenario?

A text is relevant when its own scenario ranks among the top `k` (`bench.retrieval`) of all
scenarios of the split
by embedding similarity. A cosine cut would be the same for every scenario; retrieval asks the
question that matters (could a reader tell which student this was written for?) and has a
meaning that does not depend on the control's distribution.

A text that merely restates the scenario's own question is also detected here: it ranks its
scenario first, but sets no new task.
"""

from __future__ import annotations

import numpy as np

RESTATE_SIMILARITY = 0.80
"""Cosine similarity to the scenario's question at or above which a text restates it.

Chosen on the task-wording study's 324 annotated texts (results/task-study/), as the top-k cut
(`bench.retrieval`) was, by accuracy against the annotators' restates labels (0.70 ... 0.90:
0.74, 0.81, 0.85, 0.83, 0.85; ties go to the higher recall); the default run's annotations,
which measure the scorer, were not used."""


def scenario_text(question: str, student_answer: str) -> str:
    return f"{question} {student_answer}"


def retrieval_ranks(texts: np.ndarray, scenarios: np.ndarray, own: list[int]) -> list[int]:
    """1-based rank of each text's own scenario (row `own[i]` of `scenarios`) by cosine
    similarity among all scenarios (unit-norm rows); ties count against the text."""
    sims = texts @ scenarios.T
    own_sims = sims[np.arange(len(own)), own]
    return [int(r) for r in (sims >= own_sims[:, None]).sum(axis=1)]


def cosine(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Row-wise cosine similarity of unit-norm rows."""
    return [float(x) for x in np.sum(a * b, axis=1)]
