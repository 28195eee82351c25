"""Proxy identity from Envoy's Node: Istio's node id format, metadata, and clear refusals."""

from __future__ import annotations

import pytest

from pilot.xds.proxy import InvalidNodeError, Proxy, parse_node
from pilot.xds.testing import node


def test_sidecar_node_id_is_parsed():
    proxy = parse_node(
        node(
            "sidecar~10.60.1.6~productpage-v1-5d9b8c.default~default.svc.cluster.local",
            cluster="productpage",
            metadata={"LABELS": {"app": "productpage", "version": "v1"}, "ISTIO_VERSION": "1.0"},
        )
    )
    assert proxy == Proxy(
        type="sidecar",
        ip="10.60.1.6",
        id="productpage-v1-5d9b8c.default",
        domain="default.svc.cluster.local",
        namespace="default",
        pod="productpage-v1-5d9b8c",
        labels={"app": "productpage", "version": "v1"},
        metadata={"LABELS": {"app": "productpage", "version": "v1"}, "ISTIO_VERSION": "1.0"},
        cluster="productpage",
        node_id="sidecar~10.60.1.6~productpage-v1-5d9b8c.default~default.svc.cluster.local",
    )


def test_router_with_metadata_name_and_namespace():
    proxy = parse_node(
        node(
            "router~127.0.1.9~istio-ingressgateway-1.istio-system~istio-system.svc.cluster.local",
            metadata={"NAME": "gw-pod", "NAMESPACE": "gateways"},
        )
    )
    assert (proxy.type, proxy.pod, proxy.namespace) == ("router", "gw-pod", "gateways")


def test_metadata_keeps_plain_python_values():
    proxy = parse_node(node(metadata={"N": 3, "FLAG": True, "LIST": ["a", 1], "NESTED": {}}))
    assert proxy.metadata == {"N": 3, "FLAG": True, "LIST": ["a", 1], "NESTED": {}}
    assert proxy.labels == {}


def test_namespace_follows_the_last_dot_of_the_id():
    proxy = parse_node(node("sidecar~::1~web.v2.prod~prod.svc.cluster.local"))
    assert (proxy.ip, proxy.pod, proxy.namespace) == ("::1", "web.v2", "prod")


def test_id_without_namespace_is_accepted_with_metadata_namespace():
    proxy = parse_node(node("sidecar~127.0.0.1~web~", metadata={"NAMESPACE": "apps"}))
    assert (proxy.pod, proxy.namespace) == ("web", "apps")


@pytest.mark.parametrize(
    ("node_id", "message"),
    [
        ("", "want 4 fields"),
        ("sidecar~127.0.0.1~test.default", "got 3"),
        ("gateway~127.0.0.1~test.default~default.svc.cluster.local", "proxy type 'gateway'"),
        ("sidecar~not-an-ip~test.default~default.svc.cluster.local", "'not-an-ip' is not an IP"),
        ("sidecar~127.0.0.1~~default.svc.cluster.local", "empty <pod>.<namespace>"),
        ("sidecar~127.0.0.1~test~default.svc.cluster.local", "no namespace"),
    ],
)
def test_malformed_ids_are_refused_with_the_reason(node_id: str, message: str):
    with pytest.raises(InvalidNodeError, match=message) as raised:
        parse_node(node(node_id))
    assert repr(node_id) in str(raised.value)


def test_labels_must_be_strings():
    with pytest.raises(InvalidNodeError, match="LABELS must map strings to strings"):
        parse_node(node(metadata={"LABELS": {"replicas": 3}}))


def test_the_nodes_locality_is_read_as_region_zone_subzone():
    message = node("sidecar~10.60.1.6~sleep-1.default~default.svc.cluster.local")
    assert parse_node(message).locality == ""
    message.locality.region, message.locality.zone = "region1", "zone1"
    assert parse_node(message).locality == "region1/zone1/"
    message.locality.sub_zone = "sub1"
    assert parse_node(message).locality == "region1/zone1/sub1"
