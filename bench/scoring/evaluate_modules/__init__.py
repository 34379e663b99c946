"""The project's metrics as local `evaluate` modules: `evaluate.load(module_path(name))`."""

from __future__ import annotations

from pathlib import Path

MODULES = ("bloom_level", "text_fluency")


def module_path(name: str) -> str:
    """Path to pass to `evaluate.load` for one of MODULES."""
    if name not in MODULES:
        raise KeyError(f"unknown evaluate module {name!r}; choose from: {', '.join(MODULES)}")
    return str(Path(__file__).parent / name / f"{name}.py")
