"""Method registry: name -> Steerer class, imported lazily so one broken method can't break all."""

from __future__ import annotations

import importlib

from bench.errors import UnknownNameError
from bench.methods.base import Steerer
from bench.registry import check_own_name, unique

METHODS: dict[str, str] = unique(
    [
        ("none", "baselines.unsteered:Unsteered"),
        ("prompting", "baselines.prompting:ZeroShotPrompting"),
        ("few_shot", "baselines.few_shot:FewShotPrompting"),
        ("actadd", "baselines.actadd:ActAddSteering"),
        ("caa", "baselines.caa:DiffMeanSteering"),
        ("query_sae", "bench.methods.query_sae:QuerySAESteering"),
        ("align_sae", "bench.methods.align_sae:AlignSAESteering"),
    ],
    "method",
)


def method_class(name: str) -> type[Steerer]:
    """The class registered under `name` (whose own `name` must agree); raises
    `UnknownNameError` listing valid names."""
    if name not in METHODS:
        raise UnknownNameError(f"unknown method {name!r}; choose from: {', '.join(METHODS)}")
    module_name, class_name = METHODS[name].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    check_own_name(name, cls, "name", "method")
    return cls
