"""Registries that check themselves: no key registered twice, and each entry names itself by
its key (a method's `name`, an SAE's `architecture`, a model's `alias`), so a renamed class
or a copied line fails where it is written, not in a result keyed by the wrong name."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")


class RegistryError(Exception):
    """A registry that contradicts itself: a programming error, not a user's."""


def unique(entries: Iterable[tuple[str, T]], what: str) -> dict[str, T]:
    """The entries as a dict; a key given twice raises `RegistryError`."""
    registry: dict[str, T] = {}
    for key, value in entries:
        if key in registry:
            raise RegistryError(f"{what} {key!r} is registered twice")
        registry[key] = value
    return registry


def check_own_name(key: str, entry: object, attribute: str, what: str) -> None:
    """Raise `RegistryError` unless `entry.<attribute>` equals the key it is registered under."""
    own = getattr(entry, attribute, None)
    if own != key:
        raise RegistryError(f"{what} registered as {key!r} calls itself {own!r} ({attribute})")
