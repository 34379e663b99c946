"""Registries check themselves: a key given twice fails, and an entry that calls itself by
another name than its key fails where it is looked up."""

from __future__ import annotations

import pytest

from bench.methods import registry as methods
from bench.models.registry import REGISTRY
from bench.registry import RegistryError, check_own_name, unique
from bench.sae.registry import ARCHITECTURES


def test_a_key_given_twice_is_refused() -> None:
    assert unique([("a", 1), ("b", 2)], "thing") == {"a": 1, "b": 2}
    with pytest.raises(RegistryError, match="thing 'a' is registered twice"):
        unique([("a", 1), ("a", 2)], "thing")


def test_every_registered_entry_names_itself_by_its_key() -> None:
    for name in methods.METHODS:
        assert methods.method_class(name).name == name
    for name, cls in ARCHITECTURES.items():
        check_own_name(name, cls, "architecture", "SAE architecture")
    for alias, spec in REGISTRY.items():
        check_own_name(alias, spec, "alias", "model")


def test_a_method_registered_under_another_name_fails_on_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(methods.METHODS, "caa_copy", methods.METHODS["caa"])
    with pytest.raises(RegistryError, match="registered as 'caa_copy' calls itself 'caa'"):
        methods.method_class("caa_copy")
