"""The API server's CRD checks: every kind's generated schema passes them, and each rule
refuses what apiextensions refuses, naming the path."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pkg.config import openapi, structural
from pkg.config.kinds import ALL


# Kubernetes' own kinds are built into the API server, not CRDs: only ours need the CRD rules.
@pytest.mark.parametrize(
    "kind", [k for k in ALL if not k.is_kubernetes], ids=lambda k: f"{k.group}/{k.kind}"
)
def test_every_kinds_schema_is_structural(kind) -> None:
    assert structural.schema_problems(openapi.object_schema(kind, {})) == []


def _root(**spec: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"spec": spec}}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (_root(properties={"a": {}}), "spec.properties.a.type: must not be empty"),
        (_root(type="object", properties={"a": {"$ref": "#/x", "type": "string"}}), "a.$ref: not allowed"),
        (_root(type="array"), "spec.items: must be specified for an array"),
        (_root(type="object", properties={}, additionalProperties={"type": "string"}), "mutually exclusive"),
        (_root(type="object", additionalProperties=False), "additionalProperties: false is not allowed"),
        (_root(type="string", enum=["A", 1]), "spec.enum: every value must be of type string"),
        (_root(type="list"), "'list' is not one of"),
        (_root(type="array", items={"type": "string"}, uniqueItems=True), "uniqueItems: cannot be true"),
        (_root(type="object", **{"x-kubernetes-preserve-unknown-fields": False}), "must be true or undefined"),
        (_root(type="string", **{"x-kubernetes-int-or-string": True}), "must be empty with x-kubernetes-int-or-string"),
        (_root(**{"x-kubernetes-int-or-string": True, "anyOf": [{"type": "string"}]}), "anyOf: with x-kubernetes-int-or-string"),
        (_root(type="object", properties={"a": {"type": "string"}}, anyOf=[{"description": "d", "required": ["a"]}]),
         "anyOf[0].description: must not be set inside"),
        (_root(type="object", properties={}, oneOf=[{"properties": {"b": {}}}]), "properties.b: named inside a junctor"),
        ({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}},
         "metadata.properties.labels: only name and generateName"),
        ({"properties": {}}, "openAPIV3Schema.type: the root must be of type object"),
    ],
)  # fmt: skip
def test_each_rule_refuses_with_the_path(schema: dict[str, Any], message: str) -> None:
    problems = structural.schema_problems(schema)
    assert any(message in p for p in problems), problems


def test_int_or_string_and_unknown_fields_need_no_type() -> None:
    schema = _root(
        type="object",
        properties={
            "port": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "any": {"x-kubernetes-preserve-unknown-fields": True},
            "ttl": {"type": "string", "nullable": True, "format": "duration"},
        },
    )  # fmt: skip
    assert structural.schema_problems(schema) == []


def _crd() -> dict[str, Any]:
    schema = {"type": "object"}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.istio.io"},
        "spec": {
            "group": "example.istio.io",
            "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
            "scope": "Namespaced",
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema},
                 "additionalPrinterColumns": [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]},
                {"name": "v1beta1", "served": True, "storage": False, "schema": {"openAPIV3Schema": schema}},
            ],
        },
    }  # fmt: skip


def test_a_crd_that_the_api_server_takes() -> None:
    assert structural.crd_problems(_crd()) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["metadata"].update(name="widget.example.istio.io"), "metadata.name: must be"),
        (lambda c: c["spec"]["versions"][1].update(storage=True), "exactly one version must be the storage"),
        (lambda c: c["spec"]["versions"][1].update(name="v1"), "spec.versions[1].name: 'v1' appears twice"),
        (lambda c: c["spec"]["versions"][1].update(name="version2"), "is not a Kubernetes version"),
        (lambda c: c["spec"].update(scope="Global"), "spec.scope: 'Global'"),
        (lambda c: c["spec"]["versions"][0]["additionalPrinterColumns"][0].update(type="time"), "'time' is not a column type"),
        (lambda c: c["spec"]["versions"][0]["schema"]["openAPIV3Schema"].update(type="array"),
         "spec.versions[0].schema.openAPIV3Schema.type: the root must be of type object"),
    ],
)  # fmt: skip
def test_a_crd_the_api_server_refuses(change, message: str) -> None:
    crd = copy.deepcopy(_crd())
    change(crd)
    problems = structural.crd_problems(crd)
    assert any(message in p for p in problems), problems
