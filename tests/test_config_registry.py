"""Strict config loading and the explicit registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from sr_domains.config import dump_yaml, from_dict, load_yaml, to_dict
from sr_domains.errors import ConfigError, MissingDependencyError, RegistryError, require
from sr_domains.registry import Registry


@dataclass(frozen=True)
class Inner:
    lr: float = 1e-3
    steps: int = 10


@dataclass(frozen=True)
class Outer:
    name: str
    mode: Literal["a", "b"] = "a"
    bands: tuple[int, ...] = (1, 2, 3)
    inner: Inner = field(default_factory=Inner)
    weights: str | None = None


def test_round_trip_through_yaml(tmp_path):
    cfg = Outer("x", "b", (4, 3), Inner(0.5, 3), None)
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(cfg))
    assert load_yaml(p, Outer) == cfg
    assert to_dict(cfg)["inner"] == {"lr": 0.5, "steps": 3}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "nmae": 1}, "did you mean 'name'"),
        ({"name": "x", "inner": {"lr": 1, "stpes": 2}}, "inner: unknown key"),
        ({}, "name: required key is missing"),
        ({"name": 3}, "expected a string"),
        ({"name": "x", "mode": "c"}, "not one of"),
        ({"name": "x", "bands": [1, "two"]}, r"bands\[1\]"),
        ({"name": "x", "inner": {"steps": 2.5}}, "expected an integer"),
        ({"name": "x", "inner": {"steps": True}}, "expected an integer"),
    ],
)
def test_strict_errors(data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(Outer, data)


def test_int_accepted_for_float_and_none_for_optional():
    cfg = from_dict(Outer, {"name": "x", "inner": {"lr": 1}, "weights": None})
    assert cfg.inner.lr == 1.0 and isinstance(cfg.inner.lr, float)


def test_yaml_errors_name_the_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_yaml(p, Outer)
    with pytest.raises(ConfigError, match="not found"):
        load_yaml(tmp_path / "missing.yaml", Outer)


def test_registry_is_explicit_and_helpful():
    reg: Registry[int] = Registry("thing")
    reg.add("alpha", 1)
    reg.add("beta", 2)
    assert reg.get("ALPHA") == 1 and reg.names() == ["alpha", "beta"] and "beta" in reg
    with pytest.raises(RegistryError, match="already registered"):
        reg.add("alpha", 3)
    with pytest.raises(RegistryError, match="did you mean 'alpha'"):
        reg.get("alpah")
    with pytest.raises(KeyError):  # also a built-in KeyError
        reg.get("zzz")


def test_missing_dependency_names_the_extra():
    with pytest.raises(MissingDependencyError, match=r'pip install "sr-domains\[geo\]"'):
        require("surely_not_installed_module", "geo", "GeoTIFF I/O")
    with pytest.raises(ImportError):
        require("surely_not_installed_module", "geo")
