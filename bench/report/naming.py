"""How the report names and orders methods: the control first, then the baselines, then the
SAE methods, so a page, a table and a figure list them alike whatever order filled the store."""

from __future__ import annotations

METHOD_ORDER = ("none", "prompting", "few_shot", "caa", "actadd", "query_sae", "align_sae")
"""The methods in the order every output lists them; others follow, by name."""

_LABELS = {"none": "control", "few_shot": "few-shot", "caa": "CAA", "actadd": "ActAdd"}


def method_rank(method: str) -> int:
    """A method's place in `METHOD_ORDER` (methods it does not list come after them)."""
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def method_label(method: str) -> str:
    """A method as figures and the paper print it (`few_shot` -> `few-shot`, `caa` -> `CAA`)."""
    return _LABELS.get(method, method.replace("_", "-"))


def ordered_methods(methods: set[str]) -> list[str]:
    """`methods` in report order: known ones as `METHOD_ORDER` lists them, then by name."""
    return sorted(methods, key=lambda method: (method_rank(method), method))
