"""Scorer designs that read a text's level and whether it sets a task in one decision: seven
classes, the six levels and 'no task'. The level is the argmax over the six levels; the
probability of a task is one minus that of 'no task'.

- `JointClassifier`: the chosen logistic regression's features, one seven-way model.
- `FineTunedEncoder`: the scorer's MiniLM encoder fine-tuned end to end with a seven-way
  linear head on mean-pooled tokens (CPU; its training time is reported by
  `bench score designs`).

Both train on the level-labeled texts (classifier role, decoys), the texts that set no task
and the annotated generations' training split.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from bench.atomic import cached_pickle
from bench.data.levels import LEVELS
from bench.data.roles import NO_TASK_LABEL, load_generated, load_no_task
from bench.errors import ConfigError
from bench.models.loading import cache_root
from bench.scoring.bloom import (
    ClassifierSettings,
    TextClassifier,
    TrainingSet,
    level_training_data,
)
from bench.scoring.embeddings import minilm_dir
from bench.scoring.fingerprint import scorer_fingerprint

NO_TASK_CLASS = len(LEVELS)
"""Index of the seventh class, 'no task'."""


def seven_way_training_data(settings: ClassifierSettings) -> TrainingSet:
    """Level texts (classes 0-5) and texts that set no task (class 6)."""
    data = level_training_data(settings)
    negatives = list(load_no_task("train")["text"])
    data.add(negatives, [NO_TASK_CLASS] * len(negatives))
    if settings.train_on_generated:
        generated = [r["text"] for r in load_generated("train") if r["level"] == NO_TASK_LABEL]
        data.add(generated, [NO_TASK_CLASS] * len(generated), settings.generated_weight)
    return data


class SevenWayReader:
    """Level and task probabilities from a seven-way probability (`seven_way_probs`)."""

    def seven_way_probs(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        raise NotImplementedError

    def level_probs(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        probs = self.seven_way_probs(texts, embeddings)[:, :NO_TASK_CLASS]
        return probs / np.clip(probs.sum(axis=1, keepdims=True), 1e-12, None)

    def task_probs(self, texts: list[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        return 1.0 - self.seven_way_probs(texts, embeddings)[:, NO_TASK_CLASS]


class JointClassifier(SevenWayReader):
    """One logistic regression over the level classifier's features, seven classes."""

    def __init__(self, settings: ClassifierSettings) -> None:
        self.classifier = TextClassifier(settings).fit(seven_way_training_data(settings))

    def seven_way_probs(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        return self.classifier.predict_proba(texts, embeddings, NO_TASK_CLASS + 1)


@dataclass(frozen=True)
class FineTuneSettings:
    """How the encoder is fine-tuned; part of its cache key."""

    epochs: int = 3
    """Passes over the training texts."""
    lr: float = 4e-5
    """Peak AdamW learning rate (linear warm-up over the first 10 % of steps, then linear
    decay to zero)."""
    batch_size: int = 32
    """Texts per optimizer step."""
    max_length: int = 96
    """Tokens read per text (generated texts are at most ~100 tokens)."""
    weight_decay: float = 0.01
    """AdamW weight decay."""
    seed: int = 0
    """Head initialization and shuffling."""
    train_on_generated: bool = True
    """Also train on the annotated generations' training split."""
    generated_weight: float = 1.0
    """Weight of each annotated generation in the loss (written texts weigh 1)."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.max_length < 8 or self.lr <= 0:
            raise ConfigError(
                "fine-tune settings: need epochs, batch_size >= 1, max_length >= 8, lr > 0"
            )


class FineTunedEncoder(SevenWayReader, torch.nn.Module):
    """MiniLM + a seven-way linear head on its mean-pooled last layer."""

    def __init__(self, settings: FineTuneSettings) -> None:
        torch.nn.Module.__init__(self)
        self.settings = settings
        directory = minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self.encoder = AutoModel.from_pretrained(directory, local_files_only=True)
        torch.manual_seed(settings.seed)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, NO_TASK_CLASS + 1)
        self.train_seconds = 0.0

    def logits(self, texts: list[str]) -> torch.Tensor:
        batch = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            max_length=self.settings.max_length,
            return_tensors="pt",
        )
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return self.head((hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9))

    def fit(self) -> FineTunedEncoder:
        s = self.settings
        data = ClassifierSettings(
            train_on_generated=s.train_on_generated, generated_weight=s.generated_weight
        )
        train = seven_way_training_data(data)
        generator = torch.Generator().manual_seed(s.seed)
        texts = train.texts
        steps = s.epochs * -(-len(texts) // s.batch_size)
        optimizer = torch.optim.AdamW(self.parameters(), lr=s.lr, weight_decay=s.weight_decay)
        warmup = max(1, steps // 10)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: min((step + 1) / warmup, max(0.0, (steps - step) / (steps - warmup))),
        )
        targets, weights = torch.tensor(train.labels), torch.tensor(train.weights)
        start = time.perf_counter()
        self.train()
        with tqdm(total=steps, desc="fine-tuning MiniLM", unit="step") as bar:
            for _ in range(s.epochs):
                order = torch.randperm(len(texts), generator=generator)
                for first in range(0, len(texts), s.batch_size):
                    rows = order[first : first + s.batch_size]
                    losses = torch.nn.functional.cross_entropy(
                        self.logits([texts[i] for i in rows]), targets[rows], reduction="none"
                    )
                    loss = (losses * weights[rows]).sum() / weights[rows].sum()
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    bar.update()
                    bar.set_postfix(loss=f"{loss.item():.3f}")
        self.eval()
        self.train_seconds = time.perf_counter() - start
        return self

    @torch.inference_mode()
    def seven_way_probs(self, texts: list[str], embeddings: np.ndarray | None) -> np.ndarray:
        chunks = [
            torch.softmax(self.logits(texts[i : i + 64]), dim=-1).numpy()
            for i in range(0, len(texts), 64)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, NO_TASK_CLASS + 1))


def fine_tuned_encoder(settings: FineTuneSettings = FineTuneSettings()) -> FineTunedEncoder:
    """The fine-tuned encoder for these settings (trained once, then from the cache)."""
    payload = json.dumps([scorer_fingerprint(), asdict(settings)], sort_keys=True)
    key = hashlib.sha256(payload.encode()).hexdigest()[:16]
    return cached_pickle(
        cache_root() / "scorers" / f"minilm-{key}.pkl", lambda: FineTunedEncoder(settings).fit()
    )
