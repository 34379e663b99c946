"""Strict type checks of config dataclasses, so a wrong type is one clear error, not a
comparison failing later (`'<=' not supported ...`) or a value stored silently (`seed 'a'`).

Booleans are never numbers and numbers never booleans; an int is accepted where a float is
expected; a tuple field checks every item.
"""

from __future__ import annotations

import dataclasses
import types
from functools import cache
from typing import Any, Union, get_args, get_origin, get_type_hints

from bench.errors import ConfigError

_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _matches(value: Any, kind: Any) -> bool:
    origin = get_origin(kind)
    if kind is Any:
        return True
    if kind is type(None):
        return value is None
    if origin in (Union, types.UnionType):
        return any(_matches(value, option) for option in get_args(kind))
    if origin is tuple:
        item = get_args(kind)[0]
        return isinstance(value, tuple) and all(_matches(v, item) for v in value)
    if origin is dict:
        return isinstance(value, dict)
    if origin is list:
        return isinstance(value, list)
    if kind is bool:
        return type(value) is bool
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def describe(kind: Any) -> str:
    """`kind` in words, for an error message."""
    origin = get_origin(kind)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(option) for option in get_args(kind))
    if origin is tuple:
        return f"a list of {describe(get_args(kind)[0]).removeprefix('a ').removeprefix('an ')}s"
    if origin is dict:
        return "a mapping"
    if origin is list:
        return "a list"
    if kind is type(None):
        return "null"
    return _NAMES.get(kind, getattr(kind, "__name__", str(kind)))


@cache
def _hints(cls: type) -> dict[str, Any]:
    """A dataclass's resolved annotations, read once (exports check every row against them)."""
    return get_type_hints(cls)


def check_values(cls: type, values: dict[str, Any], where: str) -> None:
    """Raise a `ConfigError` naming the first of `values` (field name -> value) that does not
    have the type `cls` (a dataclass) annotates for it."""
    hints = _hints(cls)
    for name, value in values.items():
        if not _matches(value, hints[name]):
            shown = list(value) if isinstance(value, tuple) else value
            raise ConfigError(f"{where}: {name} must be {describe(hints[name])}, got {shown!r}")


def check_types(instance: Any, where: str) -> None:
    """`check_values` for every field of a dataclass instance."""
    values = {field.name: getattr(instance, field.name) for field in dataclasses.fields(instance)}
    check_values(type(instance), values, where)
