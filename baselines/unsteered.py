"""The unsteered control: the task's plain prompt, no target level, no hooks."""

from __future__ import annotations

from typing import ClassVar

from bench.methods.base import Steerer


class Unsteered(Steerer):
    """What the model writes with no steering: the reference every method must beat."""

    name: ClassVar[str] = "none"
    role: ClassVar[str | None] = "control"
