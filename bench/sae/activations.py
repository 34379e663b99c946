"""Activation store: collect a site's activations over a corpus into bf16 safetensors shards.

Forward passes are teacher-forced, batched, and stop right after the site (a hook raises once
it has the layer's output), so collecting layer 15 of 30 costs about half a forward pass.
Padding is masked out, and so is each document's first position (attention-sink tokens carry
outlier activations). Documents, not tokens, are split into training and held-out sets.

Layout of a store directory:
  metadata.json                  what was collected, from which weights and corpus
  train-00000.safetensors ...    {"activations": [n, d] bfloat16}
  heldout-00000.safetensors ...
  heldout_documents.jsonl        the held-out texts (for CE-loss evaluation)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from bench.errors import ConfigError, DataError
from bench.hooks import Site
from bench.models.loading import LoadedModel
from bench.sae.corpus import Document, corpus_fingerprint

SITES = ("query", "residual")
METADATA_FILE = "metadata.json"
HELDOUT_DOCUMENTS = "heldout_documents.jsonl"


class _Stop(Exception):
    """Raised by the capture hook to end a forward pass after the site."""


def site_for(lm: LoadedModel, site: str, layer: int) -> Site:
    if site not in SITES:
        raise ConfigError(f"unknown site {site!r}; choose from: {', '.join(SITES)}")
    return lm.adapter.query(layer) if site == "query" else lm.adapter.residual(layer)


@dataclass(frozen=True)
class CollectionSettings:
    """How activations are collected."""

    layer: int
    site: str = "query"
    tokens: int = 2_000_000
    """Stop after this many captured tokens (train + held-out), or at the corpus' end."""
    context: int = 384
    """Longest document, in tokens (longer ones are truncated)."""
    batch_size: int = 16
    heldout_fraction: float = 0.1
    shard_tokens: int = 1 << 18

    def __post_init__(self) -> None:
        if self.site not in SITES:
            raise ConfigError(f"unknown site {self.site!r}; choose from: {', '.join(SITES)}")
        if self.tokens < 1 or self.context < 2 or self.batch_size < 1:
            raise ConfigError("tokens, context and batch_size must be positive (context >= 2)")
        if not 0 < self.heldout_fraction < 1:
            raise ConfigError("heldout_fraction must be in (0, 1)")


def forward_to_site(
    lm: LoadedModel, site: Site, input_ids: torch.Tensor, attention: torch.Tensor
) -> torch.Tensor:
    """The site's output for a batch, running the model only up to the site."""
    captured: list[torch.Tensor] = []

    def hook(_module: torch.nn.Module, _inputs: tuple, output: Any) -> None:
        tensor = output[0] if isinstance(output, tuple) else output
        captured.append(tensor[..., site.channels] if site.channels is not None else tensor)
        raise _Stop

    handle = site.module.register_forward_hook(hook)
    try:
        lm.model(input_ids=input_ids, attention_mask=attention)
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured[0]


def batches(
    lm: LoadedModel, docs: list[Document], batch_size: int, context: int
) -> Iterator[tuple[list[Document], torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(documents, input_ids, attention mask, positions to keep) per batch, right-padded."""
    tokenizer = lm.tokenizer
    pad = tokenizer.pad_token_id or 0
    for start in range(0, len(docs), batch_size):
        chunk = docs[start : start + batch_size]
        ids = [tokenizer(d.text, add_special_tokens=False)["input_ids"][:context] for d in chunk]
        width = max(len(row) for row in ids)
        input_ids = torch.full((len(ids), width), pad)
        attention = torch.zeros((len(ids), width), dtype=torch.long)
        keep = torch.zeros((len(ids), width), dtype=torch.bool)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
            attention[i, : len(row)] = 1
            keep[i, 1 : len(row)] = True  # position 0 (attention sink) is not kept
        yield chunk, input_ids, attention, keep


class _ShardWriter:
    def __init__(self, directory: Path, prefix: str, shard_tokens: int) -> None:
        self.directory, self.prefix, self.shard_tokens = directory, prefix, shard_tokens
        self.buffer: list[torch.Tensor] = []
        self.buffered = 0
        self.shards = 0
        self.tokens = 0

    def add(self, activations: torch.Tensor) -> None:
        self.buffer.append(activations.to(torch.bfloat16).cpu())
        self.buffered += len(activations)
        self.tokens += len(activations)
        if self.buffered >= self.shard_tokens:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        path = self.directory / f"{self.prefix}-{self.shards:05d}.safetensors"
        save_file({"activations": torch.cat(self.buffer).contiguous()}, str(path))
        self.buffer, self.buffered = [], 0
        self.shards += 1


@torch.no_grad()
def collect(
    lm: LoadedModel, docs: list[Document], settings: CollectionSettings, out: str | Path
) -> dict[str, Any]:
    """Write the store to `out` (must not exist yet); returns its metadata."""
    target = Path(out)
    if target.exists():
        raise ConfigError(f"{out} already exists; choose a new directory")
    if not docs:
        raise DataError("the corpus is empty")
    site = site_for(lm, settings.site, settings.layer)
    staging = target.with_name(target.name + ".partial")
    staging.mkdir(parents=True, exist_ok=False)
    heldout = [d for d in docs if d.heldout_key < settings.heldout_fraction]
    train = [d for d in docs if d.heldout_key >= settings.heldout_fraction]
    writers = {
        "train": _ShardWriter(staging, "train", settings.shard_tokens),
        "heldout": _ShardWriter(staging, "heldout", settings.shard_tokens),
    }
    budget = {"heldout": int(settings.tokens * settings.heldout_fraction)}
    budget["train"] = settings.tokens - budget["heldout"]
    used_heldout: list[Document] = []
    started = time.perf_counter()
    device = lm.device
    with tqdm(total=settings.tokens, desc="collecting", unit="tok", unit_scale=True) as bar:
        for split, split_docs in (("heldout", heldout), ("train", train)):
            writer = writers[split]
            for chunk, input_ids, attention, keep in batches(
                lm, split_docs, settings.batch_size, settings.context
            ):
                if writer.tokens >= budget[split]:
                    break
                activations = forward_to_site(lm, site, input_ids.to(device), attention.to(device))
                kept = activations[keep.to(device)]
                writer.add(kept)
                bar.update(len(kept))
                if split == "heldout":
                    used_heldout += chunk
                tokens_per_s = bar.n / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix(tok_per_s=f"{tokens_per_s:,.0f}")
            writer.flush()
    seconds = time.perf_counter() - started
    metadata = {
        "directory": str(target.resolve()),
        "model": lm.alias,
        "weights_sha256": lm.weights_sha256,
        "layer": settings.layer,
        "site": settings.site,
        "d": int(site_width(lm, settings.site)),
        "dtype": "bfloat16",
        "model_dtype": str(lm.model.dtype),
        "tokens": {split: w.tokens for split, w in writers.items()},
        "shards": {split: w.shards for split, w in writers.items()},
        "corpus": corpus_fingerprint(docs),
        "documents": {"train": len(train), "heldout": len(heldout)},
        "settings": asdict(settings),
        "seconds": seconds,
        "tokens_per_s": sum(w.tokens for w in writers.values()) / seconds,
    }
    (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    with (staging / HELDOUT_DOCUMENTS).open("w", encoding="utf-8") as handle:
        for doc in used_heldout:
            handle.write(json.dumps(asdict(doc), ensure_ascii=False) + "\n")
    staging.rename(target)
    return metadata


def write_store(
    directory: str | Path,
    train: torch.Tensor,
    heldout: torch.Tensor,
    metadata: dict[str, Any],
    shard_tokens: int = 1 << 18,
) -> Path:
    """A store from in-memory activations [n, d] (your own, or synthetic ones for tests)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=False)
    tokens = {}
    for split, data in (("train", train), ("heldout", heldout)):
        writer = _ShardWriter(out, split, shard_tokens)
        writer.add(data)
        writer.flush()
        tokens[split] = writer.tokens
    meta = {"directory": str(out.resolve()), "tokens": tokens, "d": int(train.shape[1]), **metadata}
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    (out / HELDOUT_DOCUMENTS).write_text("")
    return out


def site_width(lm: LoadedModel, site: str) -> int:
    return lm.adapter.query_width if site == "query" else lm.model.config.hidden_size


def read_metadata(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    if not path.is_file():
        raise DataError(f"{directory}: not an activation store (no {METADATA_FILE})")
    return json.loads(path.read_text())


def shard_paths(directory: str | Path, split: str) -> list[Path]:
    paths = sorted(Path(directory).glob(f"{split}-*.safetensors"))
    if not paths:
        raise DataError(f"{directory}: no {split} shards")
    return paths


def load_split(directory: str | Path, split: str, limit: int | None = None) -> torch.Tensor:
    """All (or the first `limit`) activations of a split, as float32 [n, d]. Shards keep the
    corpus' order (project text first), so a prefix is not a sample: see `sample_split`."""
    parts, total = [], 0
    for path in shard_paths(directory, split):
        part = load_file(str(path))["activations"]
        parts.append(part)
        total += len(part)
        if limit is not None and total >= limit:
            break
    return torch.cat(parts)[:limit].float()


def evenly_spaced(total: int, n: int) -> list[int]:
    """`n` indices spread over `range(total)` from its first to its last item (all of them
    when `n >= total`): the one way the SAE pipeline samples tokens and documents, because
    the corpus is ordered by source and a prefix or a truncated stride skips its end."""
    if n >= total:
        return list(range(total))
    return torch.linspace(0, total - 1, n).long().tolist()


def sample_split(directory: str | Path, split: str, n: int) -> torch.Tensor:
    """`n` activations evenly spaced over the whole split (all of it when it is smaller), as
    float32: every source in its share, which a prefix of the corpus-ordered shards is not."""
    data = load_split(directory, split)
    return data[evenly_spaced(len(data), n)]


def heldout_documents(directory: str | Path) -> list[Document]:
    path = Path(directory) / HELDOUT_DOCUMENTS
    if not path.is_file():
        raise DataError(f"{directory}: no {HELDOUT_DOCUMENTS}")
    return [Document(**json.loads(line)) for line in path.read_text().splitlines() if line]
