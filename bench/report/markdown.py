"""A Markdown results page from a store: provenance first, then the tables."""

from __future__ import annotations

from collections import Counter

from bench.report.aggregate import summarize
from bench.report.tables import confusion_tables, per_level_table
from bench.store import GenerationRow


def results_page(rows: list[GenerationRow], title: str, how: str) -> str:
    """`how` says which commands made the store and the page (shown verbatim)."""
    commits = Counter(row.git_commit for row in rows)
    configs = Counter(row.config_hash for row in rows)
    weights = sorted({(row.model, row.weights_sha256) for row in rows})
    versions = rows[0].versions if rows else {}
    created = sorted(row.created_at for row in rows)
    cells, cuts = summarize(rows)
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
        "- weights: " + ", ".join(f"{model} sha256 `{sha}`" for model, sha in weights),
        "- versions: " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        "",
        "## Per target level",
        "",
        per_level_table(cells, cuts),
        "",
        "## Confusion (scorer's predicted level per target level)",
        "",
        confusion_tables(cells),
        "",
    ]
    return "\n".join(lines)
