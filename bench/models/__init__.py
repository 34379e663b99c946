"""Model registry, loading (with a converted-weights cache), sites and generation."""

from bench.models.loading import LoadedModel, load_model
from bench.models.registry import DEFAULT_MODEL, REGISTRY, ModelSpec, resolve

__all__ = ["DEFAULT_MODEL", "REGISTRY", "LoadedModel", "ModelSpec", "load_model", "resolve"]
