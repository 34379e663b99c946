"""The scorer's fingerprint: everything that decides a score, for cell keys and the cache.

It covers the scoring code (the modules that compute a stored score, the verb lists and level
instructions they read, and how a text is joined to its context), the scorer's training data
(the classifier role and the annotated generations), the sentence encoder's weights and the
versions of the libraries that compute features and fit models.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import metadata
from pathlib import Path

from bench.data.scenarios import packaged_path
from bench.scoring.embeddings import encoder_sha256

_BENCH = Path(__file__).resolve().parent.parent
SCORER_DATA = ("classifier.jsonl", "decoys.jsonl", "no_task.jsonl", "generated.jsonl")
"""What the scorer trains on (validation-only data does not decide a score)."""
_LIBRARIES = ("numpy", "scipy", "scikit-learn", "torch", "transformers", "tokenizers")


SCORE_MODULES = (
    "scoring/bloom.py",
    "scoring/clauses.py",
    "scoring/embeddings.py",
    "scoring/fluency.py",
    "scoring/leakage.py",
    "scoring/relevance.py",
    "scoring/score.py",
    "data/levels.py",
    "data/instructions.py",
    "models/generation.py",
    "retrieval.py",
)
"""The code that computes a stored score (reports, validation and CSV I/O do not)."""


def scorer_sources() -> list[Path]:
    """The code files whose content decides a score."""
    return [_BENCH / name for name in SCORE_MODULES]


@cache
def scorer_fingerprint() -> str:
    """sha256 (16 hex) of the scorer's code, data, encoder weights and library versions."""
    digest = hashlib.sha256()
    for path in scorer_sources():
        digest.update(path.relative_to(_BENCH).as_posix().encode())
        digest.update(path.read_bytes())
    for name in SCORER_DATA:
        digest.update(name.encode())
        digest.update(packaged_path(name).read_bytes())
    digest.update(encoder_sha256().encode())
    for library in _LIBRARIES:
        try:
            digest.update(f"{library}=={metadata.version(library)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library} absent".encode())
    return digest.hexdigest()[:16]
