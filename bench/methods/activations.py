"""What activation methods share: reading a site over exemplar replies (teacher-forced under
the task's prompt), adding a vector at chosen positions during generation, and a disk cache
for learned vectors keyed by everything that decides them.

Not a method itself: methods import it; it imports no method.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import datasets
import torch
from safetensors.torch import load_file, save_file

from bench.data.levels import Level
from bench.data.scenarios import Scenario
from bench.data.tasks import Task
from bench.hooks import Phase, Site, caller_rows, current_phase, read_site, replace_site
from bench.models.generation import joiner, render_prompt
from bench.models.loading import LoadedModel, cache_root


def exemplar_scenario(row: dict[str, Any]) -> Scenario:
    """The scenario an exemplar was written for (a user CSV has none: empty fields)."""
    return Scenario(
        row.get("scenario_key") or row.get("id", "exemplar"),
        row.get("subject") or "",
        row.get("question") or "",
        row.get("student_answer") or "",
    )


class _Read(Exception):
    """Raised once the site is read: the layers after it (and the output head, which is most
    of a large-vocabulary model's cost) are not run."""


def _stop(_module: torch.nn.Module, _inputs: tuple, _output: Any) -> None:
    raise _Read


@torch.no_grad()
def reply_activations(
    lm: LoadedModel, site: Site, task: Task, exemplars: datasets.Dataset
) -> list[torch.Tensor]:
    """Per exemplar, the site's output [n_reply_tokens, d] (float32) over the tokens of its
    text, read teacher-forced as the reply to the task's prompt for its scenario. The pass
    stops at the site; what comes before it is computed exactly as in a whole pass."""
    results = []
    for row in exemplars:
        context = render_prompt(lm, task.messages(exemplar_scenario(row)), task.cue)
        head = lm.tokenizer(context, add_special_tokens=False)["input_ids"]
        tail = lm.tokenizer(joiner(context) + row["text"], add_special_tokens=False)["input_ids"]
        ids = torch.tensor([head + tail], device=lm.device)
        with read_site(site) as captured:
            stop = site.module.register_forward_hook(_stop)  # after read_site's own hook
            try:
                lm.model(input_ids=ids)
            except _Read:
                pass
            finally:
                stop.remove()
        results.append(captured[0][0, len(head) :].float())
    return results


def level_indices(levels: Level | Sequence[Level], device: torch.device) -> torch.Tensor:
    """The levels' indices: [1] for one level (every row), else one per caller row."""
    chosen = [levels] if isinstance(levels, Level) else list(levels)
    return torch.tensor([level.index for level in chosen], dtype=torch.long, device=device)


def pass_levels(indices: torch.Tensor, phase: Phase | None, batch: int) -> torch.Tensor:
    """[batch] the level index of each row of the current forward pass."""
    if len(indices) == 1:
        return indices.expand(batch)
    return indices[caller_rows(phase, batch, indices.device)]


@contextmanager
def add_at_positions(
    site: Site, delta: Callable[[torch.Tensor, Phase | None], torch.Tensor | None]
) -> Iterator[None]:
    """Add `delta(output, phase)` (same shape, or None for nothing) to the site's output."""

    def edit(output: torch.Tensor) -> torch.Tensor:
        added = delta(output, current_phase())
        return output if added is None else output + added.to(output.dtype)

    with replace_site(site, edit):
        yield


def vector_key(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def cached_vectors(
    parts: dict[str, Any], compute: Callable[[], dict[str, torch.Tensor]]
) -> dict[str, torch.Tensor]:
    """Vectors from `$BENCH_CACHE/vectors/<key>.safetensors`, computed (and stored) once per
    key; `parts` must hold everything that decides them (this module's code, which reads the
    activations, is added)."""
    keyed = {**parts, "reading": hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]}
    path = cache_root() / "vectors" / f"{vector_key(keyed)}.safetensors"
    if path.is_file():
        return load_file(str(path))
    vectors = {name: t.detach().float().cpu().contiguous() for name, t in compute().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_suffix(".tmp")
    save_file(vectors, str(staging))
    staging.replace(path)
    return vectors


def tensors_sha256(tensors: dict[str, torch.Tensor]) -> str:
    """Content sha256 of named tensors (for a method's fingerprint)."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        digest.update(name.encode())
        digest.update(tensors[name].detach().float().cpu().numpy().tobytes())
    return digest.hexdigest()
