"""Where a run's wall time goes: named sections that add up their seconds while a profile is on.

Code marks its parts with `section("prefill")`; nothing is measured unless a `Profile` is
active (`with Profile() as profile: ...`), so the marks cost a context-variable lookup in a
normal run. Sections may nest; each one's time counts in its own name only, and time spent
in nested sections is subtracted from the enclosing one, so the parts add up to the whole.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class Profile:
    """Seconds and call counts per section, measured while the profile is active."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    """Wall time of the whole `with` block."""
    _stack: list[float] = field(default_factory=list, repr=False)
    _started: float = field(default=0.0, repr=False)

    def __enter__(self) -> Profile:
        self._token = _ACTIVE.set(self)
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall_s = time.perf_counter() - self._started
        _ACTIVE.reset(self._token)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def summary(self) -> dict[str, dict[str, float]]:
        """Per section (largest first) its seconds, share of the wall time and calls; the
        time outside every section is `other`."""
        parts = dict(sorted(self.seconds.items(), key=lambda item: -item[1]))
        parts["other"] = max(self.wall_s - sum(self.seconds.values()), 0.0)
        return {
            name: {
                "seconds": round(seconds, 3),
                "share": round(seconds / self.wall_s, 4) if self.wall_s else 0.0,
                "calls": self.calls.get(name, 0),
            }
            for name, seconds in parts.items()
        }


_ACTIVE: ContextVar[Profile | None] = ContextVar("bench_profile", default=None)


@contextmanager
def section(name: str) -> Iterator[None]:
    """Count the block's wall time under `name` in the active profile (if any)."""
    profile = _ACTIVE.get()
    if profile is None:
        yield
        return
    profile._stack.append(0.0)  # time of sections nested in this one
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        nested = profile._stack.pop()
        profile.add(name, elapsed - nested)
        if profile._stack:
            profile._stack[-1] += elapsed
