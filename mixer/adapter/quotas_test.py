"""Shared quota helpers: instance name resolution, override matching, dimension keys."""

from __future__ import annotations

import dataclasses
import ipaddress

import pytest

from mixer.adapter import quotas


@pytest.mark.parametrize(
    "configured",
    [
        "requestcount.istio-system",
        "requestcount",
        "requestcount.quota",
        "requestcount.quota.istio-system",
        "requestcount.instance.istio-system",
    ],
)
def test_istio_spellings_resolve_to_the_instance(configured: str):
    assert quotas.resolve([configured], "requestcount.istio-system") == configured


def test_exact_match_wins_and_namespaces_must_agree():
    names = ["requestcount.quota.default", "requestcount.istio-system"]
    assert quotas.resolve(names, "requestcount.istio-system") == "requestcount.istio-system"
    assert quotas.resolve(["requestcount.quota.default"], "requestcount.istio-system") is None
    assert quotas.resolve(["other"], "requestcount.istio-system") is None
    assert quotas.unresolved(["requestcount"], ["requestcount.a", "x.a"]) == ["x.a"]


def test_dimensions_key_is_canonical():
    a = quotas.dimensions_key({"source": "reviews", "destination": "ratings"})
    b = quotas.dimensions_key({"destination": "ratings", "source": "reviews"})
    assert a == b
    # No separator games: values containing what a naive join would use stay distinct.
    assert quotas.dimensions_key({"a": "1,b=2"}) != quotas.dimensions_key({"a": "1", "b": "2"})


def test_dimension_values_compare_as_text():
    address = ipaddress.ip_address("10.1.2.3")
    dims = {"ip": address.packed, "code": 200, "internal": False, "ratio": 2.0}
    assert quotas.matches(
        {"ip": "10.1.2.3", "code": "200", "internal": "false", "ratio": "2"}, dims
    )
    assert not quotas.matches({"code": "404"}, dims)
    assert not quotas.matches({"missing": ""}, dims)


@dataclasses.dataclass
class Override:
    dimensions: dict[str, str]
    name: str


def test_first_matching_override_wins():
    overrides = [
        Override({"destination": "ratings", "source": "reviews"}, "narrow"),
        Override({"destination": "ratings"}, "broad"),
    ]
    dims = {"destination": "ratings", "source": "reviews"}
    assert quotas.first_override(overrides, dims).name == "narrow"
    assert quotas.first_override(overrides, {"destination": "ratings"}).name == "broad"
    assert quotas.first_override(overrides, {"destination": "details"}) is None
