"""A Markdown results page from a store: provenance first, then one section per run."""

from __future__ import annotations

from collections import Counter

from bench.report.aggregate import summarize
from bench.report.tables import run_report
from bench.store import GenerationRow


def results_page(rows: list[GenerationRow], title: str, how: str) -> str:
    """`how` says which commands made the store and the page (shown verbatim)."""
    commits = Counter(row.git_commit for row in rows)
    configs = Counter(row.config_hash for row in rows)
    versions = rows[0].versions if rows else {}
    created = sorted(row.created_at for row in rows)
    lines = [
        f"# {title}",
        "",
        how,
        "",
        "## Provenance",
        "",
        f"- rows: {len(rows)}" + (f", generated {created[0]} to {created[-1]}" if created else ""),
        "- git commit(s): " + ", ".join(f"`{c}` ({n} rows)" for c, n in commits.items()),
        "- config hash(es): " + ", ".join(f"`{c}` ({n} rows)" for c, n in configs.items()),
        "- versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
    ]
    for run in summarize(rows):
        lines += ["", f"## Run {run.run_key}: {run.model}, task {run.task}, {run.split} split"]
        lines += ["", run_report(run, confusion=True, headings="### ")]
    return "\n".join([*lines, ""])
