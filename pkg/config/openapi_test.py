"""Schemas from the protos: the mapping of each proto type, the comments, and that Istio's own
samples validate against them (and a misspelt field does not)."""

from __future__ import annotations

import functools
import pathlib
from typing import Any

import jsonschema
import pytest
import yaml

from pkg.config import openapi, protodoc
from pkg.config.kinds import ALL, ISTIO

ROOT = pathlib.Path(__file__).absolute().parents[2]
SAMPLES = sorted((ROOT / "samples" / "bookinfo" / "networking").glob("*.yaml"))


def at(schema: dict[str, Any], *path: str) -> dict[str, Any]:
    for key in path:
        schema = schema["items"] if key == "[]" else schema["properties"][key]
    return schema


def test_proto_types_map_as_istios_crds_have_them():
    vs = openapi.spec_schema(ALL.by_name("vs"))
    assert at(vs, "hosts") == {
        "description": "Destination hosts (DNS names, optionally wildcarded, or IPs).",
        "type": "array",
        "items": {"type": "string"},
    }
    route = at(vs, "http", "[]")
    assert at(route, "timeout")["type"] == "string"  # google.protobuf.Duration
    assert at(route, "mirrorPercent")["nullable"] is True  # a wrapper
    assert "Deprecated." in at(route, "mirrorPercent")["description"]
    headers = at(route, "headers", "request", "set")
    assert headers["type"] == "object"
    assert headers["additionalProperties"] == {"type": "string"}
    dr = openapi.spec_schema(ALL.by_name("dr"))
    lb = at(dr, "trafficPolicy", "loadBalancer", "simple")
    assert lb["type"] == "string"
    assert "ROUND_ROBIN" in lb["enum"]
    # 64-bit integers are int-or-string, as proto3 JSON writes them.
    consistent = at(dr, "trafficPolicy", "loadBalancer", "consistentHash")
    assert at(consistent, "minimumRingSize")["x-kubernetes-int-or-string"] is True
    every = [s for k in ISTIO for s in _walk(openapi.spec_schema(k, {}))]
    assert all("$ref" not in s for s in every)  # structural: everything inline
    rule = openapi.spec_schema(ALL.by_name("rule"))
    assert rule["type"] == "object"


def _walk(schema: Any):
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk(value)


def test_descriptions_are_the_proto_comments():
    docs = protodoc.comments(["api/networking/v1alpha3/virtual_service.proto"])
    assert docs["istio.networking.v1alpha3.HTTPRoute.match"] == "OR-ed list of match blocks."
    schema = openapi.object_schema(ALL.by_name("vs"), docs)
    assert schema["description"] == docs["istio.networking.v1alpha3.VirtualService"]
    assert at(schema, "spec", "http")["description"] == "Ordered HTTP rules; first match wins."
    # google.protobuf's own comments stay out of our schemas.
    assert "JSON representation" not in repr(schema)


def test_missing_sources_lose_descriptions_not_schemas(tmp_path, monkeypatch):
    monkeypatch.setattr(protodoc, "ROOT", tmp_path)
    protodoc._comments.cache_clear()
    try:
        with pytest.raises(protodoc.ProtoSourceError, match="not found"):
            protodoc.comments(["api/networking/v1alpha3/virtual_service.proto"])
        assert openapi.descriptions([ALL.by_name("vs")]) == {}
    finally:
        protodoc._comments.cache_clear()


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused, as kubectl's validation and the store refuse them."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if "properties" in out and not schema.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@functools.cache
def strict_validator(name: str) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(strict(openapi.object_schema(ALL.by_name(name), {})))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_istios_samples_validate(path: pathlib.Path):
    for document in yaml.safe_load_all(path.read_text()):
        if not document:
            continue
        kind = ALL.by_kind(document["apiVersion"], document["kind"])
        assert kind is not None
        strict_validator(kind.plural).validate(document)


def test_a_misspelt_field_fails_and_v2_keeps_what_kubectl_reads():
    vs = openapi.object_schema(ALL.by_name("vs"), {})
    wrong = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "VirtualService",
        "spec": {"host": ["x"]},
    }
    with pytest.raises(jsonschema.ValidationError, match="'host' was unexpected"):
        jsonschema.validate(wrong, strict(vs))
    v2 = openapi.to_v2(vs)
    route = at(v2, "spec", "http", "[]")
    assert "nullable" not in at(route, "mirrorPercent")
    # An object that keeps unknown fields takes any value in v2 (kubectl checks none of it).
    status = at(v2, "status")
    assert "type" not in status
    assert status["x-kubernetes-preserve-unknown-fields"] is True
