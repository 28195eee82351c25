"""Vocabularies from attributemanifests, and Istio's standard one."""

import pathlib
import re

import pytest
import yaml

from pkg.lang import vocabulary
from pkg.lang.ast import Attribute
from pkg.lang.parser import parse
from pkg.lang.types import ValueType as T

STANDARD = (
    pathlib.Path(__file__).parent.parent.parent / "api" / "policy" / "v1beta1" / "attributes.yaml"
)


def manifest(attributes):
    return {"kind": "attributemanifest", "spec": {"attributes": attributes}}


def test_from_manifests():
    documents = [
        manifest({"a.b": {"valueType": "STRING"}, "n": {"valueType": 2}}),
        {"kind": "rule", "spec": {"attributes": {"x": {"valueType": "BOOL"}}}},
        None,  # an empty YAML document
        manifest({"a.b": {"value_type": "STRING"}, "m": {"valueType": "STRING_MAP"}}),
    ]
    assert vocabulary.from_manifests(documents) == {
        "a.b": T.STRING,
        "n": T.INT64,
        "m": T.STRING_MAP,
    }


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        ([manifest({"a": {"valueType": "TEXT"}})], "attribute a: unknown value type 'TEXT'"),
        ([manifest({"a": {"valueType": 99}})], "attribute a: unknown value type 99"),
        ([manifest({"a": {}})], "attribute a has no value type"),
        (
            [manifest({"a": {"valueType": "VALUE_TYPE_UNSPECIFIED"}})],
            "attribute a has no value type",
        ),
        (
            [manifest({"a": {"valueType": "STRING"}}), manifest({"a": {"valueType": "INT64"}})],
            "attribute a declared as both STRING and INT64",
        ),
    ],
)
def test_from_manifests_refuses(documents, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        vocabulary.from_manifests(documents)


# Section 3.1 of the Istio fact sheet: the 1.0 vocabulary and the deprecated 0.8 names.
EXPECTED = {
    "origin.ip": T.IP_ADDRESS, "origin.uid": T.STRING, "origin.user": T.STRING,
    "source.ip": T.IP_ADDRESS, "source.labels": T.STRING_MAP, "source.metadata": T.STRING_MAP,
    "source.name": T.STRING, "source.namespace": T.STRING, "source.owner": T.STRING,
    "source.service": T.STRING, "source.serviceAccount": T.STRING, "source.services": T.STRING,
    "source.workload.uid": T.STRING, "source.workload.name": T.STRING,
    "source.workload.namespace": T.STRING, "source.uid": T.STRING, "source.user": T.STRING,
    "source.principal": T.STRING, "source.domain": T.STRING,
    "destination.ip": T.IP_ADDRESS, "destination.port": T.INT64,
    "destination.labels": T.STRING_MAP, "destination.metadata": T.STRING_MAP,
    "destination.owner": T.STRING, "destination.name": T.STRING,
    "destination.container.name": T.STRING, "destination.container.image": T.STRING,
    "destination.namespace": T.STRING, "destination.service": T.STRING,
    "destination.service.uid": T.STRING, "destination.service.name": T.STRING,
    "destination.service.namespace": T.STRING, "destination.service.host": T.STRING,
    "destination.serviceAccount": T.STRING, "destination.workload.uid": T.STRING,
    "destination.workload.name": T.STRING, "destination.workload.namespace": T.STRING,
    "destination.uid": T.STRING, "destination.principal": T.STRING,
    "destination.user": T.STRING, "destination.domain": T.STRING,
    "request.headers": T.STRING_MAP, "request.id": T.STRING, "request.host": T.STRING,
    "request.method": T.STRING, "request.path": T.STRING, "request.url_path": T.STRING,
    "request.query_params": T.STRING_MAP, "request.reason": T.STRING, "request.referer": T.STRING,
    "request.scheme": T.STRING, "request.size": T.INT64, "request.total_size": T.INT64,
    "request.time": T.TIMESTAMP, "request.useragent": T.STRING, "request.api_key": T.STRING,
    # In Istio 1.4's istioproxy manifest (its bookinfo RBAC samples log them):
    "rbac.permissive.response_code": T.STRING, "rbac.permissive.effective_policy_id": T.STRING,
    "request.auth.principal": T.STRING, "request.auth.audiences": T.STRING,
    "request.auth.presenter": T.STRING, "request.auth.claims": T.STRING_MAP,
    "request.auth.raw_claims": T.STRING,
    "response.headers": T.STRING_MAP, "response.size": T.INT64, "response.total_size": T.INT64,
    "response.time": T.TIMESTAMP, "response.duration": T.DURATION, "response.code": T.INT64,
    "response.grpc_status": T.STRING, "response.grpc_message": T.STRING,
    "connection.id": T.STRING, "connection.event": T.STRING, "connection.received.bytes": T.INT64,
    "connection.received.bytes_total": T.INT64, "connection.sent.bytes": T.INT64,
    "connection.sent.bytes_total": T.INT64, "connection.duration": T.DURATION,
    "connection.mtls": T.BOOL, "connection.requested_server_name": T.STRING,
    "context.protocol": T.STRING, "context.time": T.TIMESTAMP, "context.timestamp": T.TIMESTAMP,
    "context.proxy_version": T.STRING,
    "context.reporter.kind": T.STRING, "context.reporter.uid": T.STRING,
    "context.reporter.local": T.BOOL, "context.proxy_error_code": T.STRING,
    "api.service": T.STRING, "api.version": T.STRING, "api.operation": T.STRING,
    "api.protocol": T.STRING,
    "check.error_code": T.INT64, "check.error_message": T.STRING, "check.cache_hit": T.BOOL,
    "quota.cache_hit": T.BOOL,
}  # fmt: skip


def test_the_standard_vocabulary():
    assert vocabulary.load(STANDARD) == EXPECTED


def test_standard_manifests_are_the_two_istio_installs():
    documents = list(yaml.safe_load_all(STANDARD.read_text()))
    assert [(d["apiVersion"], d["kind"], d["metadata"]) for d in documents] == [
        (
            "config.istio.io/v1alpha2",
            "attributemanifest",
            {"name": "istioproxy", "namespace": "istio-system"},
        ),
        (
            "config.istio.io/v1alpha2",
            "attributemanifest",
            {"name": "kubernetes", "namespace": "istio-system"},
        ),
    ]
    for document in documents:
        for name, info in document["spec"]["attributes"].items():
            assert info["description"], name


def test_every_standard_attribute_can_be_named_in_an_expression():
    for name in EXPECTED:
        assert parse(name) == Attribute(name)
