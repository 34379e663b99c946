"""The Bloom-level scorer: MiniLM sentence embeddings + lexical n-grams, logistic regression.

Trained only on the `classifier` data role; the fitted model is cached under
`$BENCH_CACHE/scorers/`, keyed by a hash of its training data and settings.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bench.data.levels import LEVELS, Level, has_signature_verb
from bench.data.roles import load_classifier_data
from bench.models.loading import cache_root
from bench.scoring.embeddings import sentence_encoder

LEVEL_NAMES = [level.value for level in LEVELS]


@dataclass(frozen=True)
class ClassifierSettings:
    """How the scorer is built; part of its cache key."""

    embedding_weight: float = 1.0
    """Scale of the (unit-norm) sentence embedding block in the feature vector."""
    lexical_weight: float = 1.0
    """Scale of the TF-IDF word n-gram block (0 turns lexical features off)."""
    ngram_max: int = 2
    """Longest word n-gram in the lexical block."""
    verb_weight: float = 1.0
    """Scale of the taxonomy-verb block: per level, whether the text opens with / contains one
    of its signature verbs (the verb lists of the taxonomy, not learned)."""
    c: float = 4.0
    """Inverse L2 regularization of the logistic regression."""
    version: int = 1
    """Bump when the feature code changes, to invalidate caches."""


def verb_features(texts: list[str]) -> np.ndarray:
    """[n, 12]: for each level, opens with one of its signature verbs; contains one."""
    features = np.zeros((len(texts), 2 * len(LEVELS)))
    for row, text in enumerate(texts):
        words = text.strip().split()
        opening = " ".join(words[:1])
        for level in LEVELS:
            features[row, level.index] = has_signature_verb(opening, level)
            features[row, len(LEVELS) + level.index] = has_signature_verb(text, level)
    return features


class BloomClassifier:
    """Predicts a probability for each of the six levels."""

    def __init__(self, settings: ClassifierSettings | None = None) -> None:
        self.settings = settings or ClassifierSettings()
        self.vectorizer = TfidfVectorizer(
            ngram_range=(1, self.settings.ngram_max), sublinear_tf=True, min_df=2, lowercase=True
        )
        self.model = LogisticRegression(C=self.settings.c, max_iter=2000)

    def _features(
        self, texts: list[str], fit: bool = False, embeddings: np.ndarray | None = None
    ) -> sparse.csr_matrix:
        if embeddings is None:
            embeddings = sentence_encoder().encode(texts)
        blocks = [sparse.csr_matrix(embeddings * self.settings.embedding_weight)]
        if self.settings.verb_weight > 0:
            blocks.append(sparse.csr_matrix(verb_features(texts) * self.settings.verb_weight))
        if self.settings.lexical_weight > 0:
            lexical = (
                self.vectorizer.fit_transform(texts) if fit else self.vectorizer.transform(texts)
            )
            blocks.append(lexical * self.settings.lexical_weight)
        return sparse.hstack(blocks).tocsr()

    def fit(self, texts: list[str], levels: list[str]) -> BloomClassifier:
        labels = np.array([LEVEL_NAMES.index(level) for level in levels])
        self.model.fit(self._features(texts, fit=True), labels)
        return self

    def predict_proba(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """[n, 6] probabilities in taxonomy order (Remember ... Create).

        `embeddings`: the texts' sentence embeddings, if the caller has them already."""
        if not texts:
            return np.zeros((0, len(LEVELS)))
        probs = np.zeros((len(texts), len(LEVELS)))
        probs[:, self.model.classes_] = self.model.predict_proba(
            self._features(texts, embeddings=embeddings)
        )
        return probs

    def predict(self, texts: list[str]) -> list[Level]:
        return [LEVELS[i] for i in self.predict_proba(texts).argmax(axis=1)]


def _cache_key(train: datasets.Dataset, settings: ClassifierSettings) -> str:
    payload = json.dumps(
        {"texts": list(train["text"]), "levels": list(train["level"]), **asdict(settings)}
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def trained_classifier(
    data_path: str | Path | None = None, settings: ClassifierSettings | None = None
) -> BloomClassifier:
    """The scorer trained on the classifier role's train split (from cache when possible)."""
    settings = settings or ClassifierSettings()
    train = load_classifier_data("train", data_path)
    path = cache_root() / "scorers" / f"bloom-{_cache_key(train, settings)}.pkl"
    if path.is_file():
        with path.open("rb") as handle:
            return pickle.load(handle)
    classifier = BloomClassifier(settings).fit(list(train["text"]), list(train["level"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    with staging.open("wb") as handle:
        pickle.dump(classifier, handle)
    staging.rename(path)
    return classifier
