"""The relevance rule's cut, at the floor: the scorer applies it and reports describe it.

A text is relevant when its own scenario ranks among the top `RELEVANCE_TOP_K` scenarios of
the split by embedding similarity (see `bench.scoring.relevance`). It decides a stored score,
so this file is part of the scorer's fingerprint.
"""

from __future__ import annotations

RELEVANCE_TOP_K = 2
"""A text is relevant when its scenario is among the 2 most similar of the split; chosen on
the task-wording study's 324 annotated texts (results/task-study/) by accuracy against the
annotators' on-topic labels (k in 1, 2, 3, 5: 0.86, 0.88, 0.87, 0.87); the default run's
annotations, which measure the scorer, were not used."""
