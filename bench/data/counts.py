"""What the project's data holds: counts by role, split and level (`bench data`)."""

from __future__ import annotations

from collections import Counter

from bench.data.roles import (
    load_classifier_data,
    load_decoys,
    load_exemplars,
    load_generated,
    load_independent_test,
    load_no_task,
)
from bench.data.scenarios import load_scenarios


def data_counts() -> list[str]:
    """One line per role and split: its size and its counts by level (or kind)."""
    scenarios = load_scenarios()
    lines = [
        f"scenarios: {len(scenarios)} ({dict(Counter(scenarios['split']))}), "
        f"{len(set(scenarios['subject']))} subjects"
    ]
    exemplars = load_exemplars()
    for form in sorted(set(exemplars["form"])):
        levels = Counter(r["level"] for r in exemplars if r["form"] == form)
        lines.append(f"exemplars/{form}: {sum(levels.values())} {dict(levels)}")
    for name, rows, key in (
        ("classifier", load_classifier_data(), "level"),
        ("decoys", load_decoys(), "level"),
        ("no-task", load_no_task(), "category"),
        ("generated", load_generated(), "level"),
    ):
        for split in ("train", "heldout"):
            kinds = Counter(r[key] for r in rows if r["split"] == split)
            lines.append(f"{name}/{split}: {sum(kinds.values())} {dict(kinds)}")
    independent = load_independent_test()
    for writer in sorted(set(independent["writer"])):
        kinds = Counter(r["kind"] for r in independent if r["writer"] == writer)
        lines.append(f"independent/writer {writer}: {sum(kinds.values())} {dict(kinds)}")
    return lines
