"""The scorer's two classifiers: the Bloom level a text asks for, and whether it sets a task.

Both are logistic regressions over the same feature blocks: MiniLM sentence embeddings of the
whole text, optionally of its task clause (`bench.scoring.clauses`), TF-IDF word n-grams and
taxonomy-verb features. Which blocks, and where the verb features are read, is a design
choice (`ClassifierSettings`); the datasheet compares designs on held-out data. Trained only
on the `classifier` role; cached under `$BENCH_CACHE/scorers/`, keyed by the scorer's
fingerprint (code, data, encoder, library versions) and the settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal, Protocol

import datasets
import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from bench.atomic import cached_pickle
from bench.data.levels import LEVELS, Level, has_signature_verb
from bench.data.roles import (
    NO_TASK_LABEL,
    load_classifier_data,
    load_decoys,
    load_generated,
    load_no_task,
)
from bench.models.loading import cache_root
from bench.scoring.clauses import form_features, task_clause
from bench.scoring.embeddings import sentence_encoder
from bench.scoring.fingerprint import scorer_fingerprint

LEVEL_NAMES = [level.value for level in LEVELS]


@dataclass(frozen=True)
class ClassifierSettings:
    """How a classifier is built; part of its cache key."""

    embedding_weight: float = 1.0
    """Scale of the whole text's (unit-norm) sentence embedding."""
    clause_weight: float = 0.0
    """Scale of the task clause's sentence embedding (0: not used)."""
    lexical_weight: float = 1.0
    """Scale of the TF-IDF word n-gram block (0: off)."""
    lexical_scope: Literal["text", "clause"] = "text"
    """Whether n-grams are read in the whole text or in its task clause only."""
    ngram_max: int = 2
    """Longest word n-gram in the lexical block."""
    verb_weight: float = 1.0
    """Scale of the taxonomy-verb block: per level, whether the scope opens with / contains
    one of its signature verbs (the taxonomy's lists, not learned). 0: off."""
    verb_scope: Literal["text", "clause"] = "text"
    """Whether verbs are read in the whole text or in its task clause only."""
    train_on_decoys: bool = True
    """Also train on the decoy split's training texts (verbs of other levels as framing)."""
    train_on_generated: bool = False
    """Also train on the annotated generations' training split (what a steered small model
    writes for the exemplars' scenarios): texts at a level for the level classifier, every
    text (a task or none) for the task detector."""
    generated_weight: float = 1.0
    """Weight of each annotated generation in the fit (the written texts weigh 1): how much
    the few in-distribution texts count against the many written ones."""
    form_weight: float = 0.0
    """Scale of the form block: does the task clause ask or tell (a question mark, a question
    word or an imperative opening) and does the text address the student ('you')? 0: off."""
    balanced: bool = False
    """Weight classes inversely to their frequency (the task detector has 4x more texts that
    set a task than texts that don't)."""
    c: float = 4.0
    """Inverse L2 regularization of the logistic regression."""


def verb_features(texts: list[str]) -> np.ndarray:
    """[n, 12]: for each level, opens with one of its signature verbs; contains one."""
    features = np.zeros((len(texts), 2 * len(LEVELS)))
    for row, text in enumerate(texts):
        opening = " ".join(text.strip().split()[:1])
        for level in LEVELS:
            features[row, level.index] = has_signature_verb(opening, level)
            features[row, len(LEVELS) + level.index] = has_signature_verb(text, level)
    return features


@dataclass
class TrainingSet:
    """Texts, their class indices and per-text weights: what a classifier is fitted on."""

    texts: list[str] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)

    def add(self, texts: list[str], labels: list[int], weight: float = 1.0) -> None:
        self.texts += texts
        self.labels += labels
        self.weights += [weight] * len(texts)


class TextClassifier:
    """Logistic regression over the feature blocks its settings choose."""

    def __init__(self, settings: ClassifierSettings) -> None:
        self.settings = settings
        self.vectorizer = TfidfVectorizer(
            ngram_range=(1, settings.ngram_max), sublinear_tf=True, min_df=2, lowercase=True
        )
        self.model = LogisticRegression(
            C=settings.c, max_iter=3000, class_weight="balanced" if settings.balanced else None
        )

    def _features(
        self, texts: list[str], embeddings: np.ndarray | None, fit: bool = False
    ) -> sparse.csr_matrix:
        s = self.settings
        encoder = sentence_encoder()
        if embeddings is None:
            embeddings = encoder.encode(texts)
        clauses = [task_clause(t) for t in texts]
        blocks = [sparse.csr_matrix(embeddings * s.embedding_weight)]
        if s.clause_weight > 0:
            blocks.append(sparse.csr_matrix(encoder.encode(clauses) * s.clause_weight))
        if s.verb_weight > 0:
            scope = clauses if s.verb_scope == "clause" else texts
            blocks.append(sparse.csr_matrix(verb_features(scope) * s.verb_weight))
        if s.form_weight > 0:
            blocks.append(sparse.csr_matrix(form_features(texts) * s.form_weight))
        if s.lexical_weight > 0:
            scope = clauses if s.lexical_scope == "clause" else texts
            lexical = (
                self.vectorizer.fit_transform(scope) if fit else self.vectorizer.transform(scope)
            )
            blocks.append(lexical * s.lexical_weight)
        return sparse.hstack(blocks).tocsr()

    def fit(self, data: TrainingSet) -> TextClassifier:
        features = self._features(data.texts, None, fit=True)
        self.model.fit(features, np.array(data.labels), sample_weight=np.array(data.weights))
        return self

    def predict_proba(
        self, texts: list[str], embeddings: np.ndarray | None, n_classes: int
    ) -> np.ndarray:
        """[n, n_classes] probabilities (classes absent from training get 0)."""
        probs = np.zeros((len(texts), n_classes))
        if texts:
            features = self._features(texts, embeddings)
            probs[:, self.model.classes_] = self.model.predict_proba(features)
        return probs


class BloomClassifier(TextClassifier):
    """Predicts a probability for each of the six levels (taxonomy order)."""

    def level_probs(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.predict_proba(texts, embeddings, len(LEVELS))

    def predict(self, texts: list[str]) -> list[Level]:
        return [LEVELS[i] for i in self.level_probs(texts).argmax(axis=1)]


class LevelReader(Protocol):
    """What a scorer design gives: per text, a probability for each level and that it sets
    the student a task."""

    def level_probs(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray: ...

    def task_probs(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray: ...


@dataclass
class TrainedScorer:
    """The fitted level classifier and task detector."""

    levels: BloomClassifier
    tasks: TextClassifier

    def level_probs(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return self.levels.level_probs(texts, embeddings)

    def task_probs(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Probability that each text sets the student a task."""
        return self.tasks.predict_proba(texts, embeddings, 2)[:, 1]


DEFAULT_LEVEL_SETTINGS = ClassifierSettings(
    verb_scope="clause", clause_weight=1.0, train_on_generated=True
)
"""The design chosen on held-out data (see the datasheet's comparison of designs)."""
TASK_SETTINGS = ClassifierSettings(
    verb_weight=0.0,
    clause_weight=1.0,
    lexical_scope="clause",
    form_weight=1.0,
    balanced=True,
    train_on_generated=True,
)
"""The task detector reads form, not level: no verb block; the task clause's embedding and
n-grams and the form block; classes balanced; it learns from the annotated generations what a
small model's texts that set no task look like."""


def _levels(data: datasets.Dataset | list[dict]) -> tuple[list[str], list[int]]:
    return [r["text"] for r in data], [LEVEL_NAMES.index(r["level"]) for r in data]


def level_training_data(settings: ClassifierSettings) -> TrainingSet:
    """What the level classifier trains on (train splits; classes in taxonomy order)."""
    data = TrainingSet()
    data.add(*_levels(load_classifier_data("train")))
    if settings.train_on_decoys:
        data.add(*_levels(load_decoys("train")))
    if settings.train_on_generated:
        generated = [r for r in load_generated("train") if r["level"] != NO_TASK_LABEL]
        data.add(*_levels(generated), settings.generated_weight)
    return data


def task_training_data(settings: ClassifierSettings) -> TrainingSet:
    """Texts that set a task (1: every level-labeled text) vs texts that set none (0)."""
    positives = list(load_classifier_data("train")["text"]) + list(load_decoys("train")["text"])
    negatives = list(load_no_task("train")["text"])
    data = TrainingSet()
    data.add(positives, [1] * len(positives))
    data.add(negatives, [0] * len(negatives))
    if settings.train_on_generated:
        generated = load_generated("train")
        labels = [int(r["level"] != NO_TASK_LABEL) for r in generated]
        data.add(list(generated["text"]), labels, settings.generated_weight)
    return data


def train_scorer(
    level_settings: ClassifierSettings = DEFAULT_LEVEL_SETTINGS,
    task_settings: ClassifierSettings = TASK_SETTINGS,
) -> TrainedScorer:
    levels = BloomClassifier(level_settings).fit(level_training_data(level_settings))
    tasks = TextClassifier(task_settings).fit(task_training_data(task_settings))
    return TrainedScorer(levels, tasks)


def trained_scorer(
    level_settings: ClassifierSettings = DEFAULT_LEVEL_SETTINGS,
    task_settings: ClassifierSettings = TASK_SETTINGS,
) -> TrainedScorer:
    """The scorer trained on the classifier role (from the cache when possible)."""
    payload = json.dumps(
        [scorer_fingerprint(), asdict(level_settings), asdict(task_settings)], sort_keys=True
    )
    key = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return cached_pickle(
        cache_root() / "scorers" / f"scorer-{key}.pkl",
        lambda: train_scorer(level_settings, task_settings),
    )
