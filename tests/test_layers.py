"""The layering rules of docs/DESIGN.md, read off the import graph (every import, lazy ones
inside functions too): a rule broken by an edit fails here with the offending imports."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
METHOD_MODULES = {
    "baselines.unsteered",
    "baselines.prompting",
    "baselines.few_shot",
    "baselines.actadd",
    "baselines.caa",
    "bench.methods.query_sae",
    "bench.methods.align_sae",
}
"""The modules that define a registered method (bench/methods/registry.py)."""

FORBIDDEN: dict[str, set[str]] = {
    "bench.report": {
        "bench.scoring",
        "bench.models",
        "bench.methods",
        "baselines",
        "bench.runner",
        "bench.cli",
    },
    "bench.scoring": {"bench.methods", "baselines", "bench.runner", "bench.report", "bench.cli"},
    "bench.methods": {"bench.scoring", "bench.runner", "bench.report", "bench.cli"},
    "baselines": {"bench.scoring", "bench.runner", "bench.report", "bench.cli"},
    "bench.sae": {"bench.methods", "baselines", "bench.scoring", "bench.report", "bench.runner"},
    "bench.models": {"bench.methods", "baselines", "bench.scoring", "bench.report", "bench.sae"},
    "bench.data": {"bench.models", "bench.methods", "bench.scoring", "bench.report", "bench.sae"},
    "bench.hooks": {"bench.models", "bench.methods", "bench.scoring", "bench.report"},
    "bench.store": {"bench.models", "bench.methods", "bench.scoring", "bench.report"},
    "bench.criteria": {"bench.models", "bench.methods", "bench.scoring", "bench.report"},
    "bench.retrieval": {"bench.models", "bench.methods", "bench.scoring", "bench.report"},
}
"""Per package (or module): what it may not import. Imports point down: cli at the top;
runner below it; report, scoring and the methods beside each other; the SAEs, models, data,
hooks, store, criteria (judging stored scores) and retrieval (the relevance cut the scorer
applies and reports describe) at the floor."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> Iterator[str]:
    """Every absolute module name `path` imports, at any depth of its code."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def graph() -> dict[str, set[str]]:
    files = [*ROOT.joinpath("bench").rglob("*.py"), *ROOT.joinpath("baselines").glob("*.py")]
    return {module_name(f): set(imports(f)) for f in files}


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def broken(edges: dict[str, set[str]]) -> list[str]:
    """Every import that breaks a rule, as 'importer -> imported (rule)'."""
    found = []
    for importer, imported in sorted(edges.items()):
        for target in sorted(imported):
            for package, banned in FORBIDDEN.items():
                if within(importer, package) and any(within(target, b) for b in banned):
                    found.append(f"{importer} -> {target} ({package} may not import it)")
            if importer in METHOD_MODULES and target in METHOD_MODULES - {importer}:
                found.append(f"{importer} -> {target} (a method imports a method)")
            entry = within(importer, "bench.cli") or importer == "bench.__main__"
            if within(target, "bench.cli") and not entry:
                found.append(f"{importer} -> {target} (only the entry point imports cli)")
    return found


def test_the_import_graph_keeps_the_layering_rules() -> None:
    assert broken(graph()) == []


@pytest.mark.parametrize(
    ("importer", "target"),
    [
        ("bench.methods.align_sae", "bench.methods.query_sae"),
        ("bench.report.tables", "bench.models.loading"),
        ("bench.report.summary", "bench.scoring.relevance"),
        ("bench.scoring.score", "baselines.caa"),
        ("bench.runner", "bench.cli.run"),
    ],
)
def test_a_broken_rule_is_found(importer: str, target: str) -> None:
    edges = graph()
    edges.setdefault(importer, set()).add(target)
    assert any(line.startswith(f"{importer} -> {target} ") for line in broken(edges))


def test_every_registered_method_module_is_named_here() -> None:
    from bench.methods.registry import METHODS

    assert {path.split(":")[0] for path in METHODS.values()} == METHOD_MODULES
