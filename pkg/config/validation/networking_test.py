"""Networking validators, each driven through the loader as a user's file would be."""

from __future__ import annotations

import pytest
import yaml

from pkg.config import loader


def load(kind: str, spec: dict, name: str = "x"):
    doc = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }
    return loader.load_text(yaml.safe_dump(doc))


def problems(kind: str, spec: dict) -> list[str]:
    with pytest.raises(loader.LoadError) as caught:
        load(kind, spec)
    return [str(p) for e in caught.value.errors for p in e.problems]


ROUTE = [{"destination": {"host": "reviews"}}]


def test_virtual_service_checks():
    assert problems("VirtualService", {"hosts": ["reviews"]}) == [
        "spec: a VirtualService needs at least one http, tcp or tls route"
    ]
    assert problems("VirtualService", {"hosts": ["reviews"], "http": [{}]}) == [
        "spec.http[0]: an HTTP route needs a route, redirect, directResponse or delegate"
    ]
    both = {"route": ROUTE, "redirect": {"uri": "/v2"}}
    assert (
        "may not both route and redirect"
        in problems("VirtualService", {"hosts": ["r"], "http": [both]})[0]
    )
    assert problems(
        "VirtualService", {"hosts": ["r"], "http": [{"match": [{"uri": {}}], "route": ROUTE}]}
    ) == ["spec.http[0].match[0].uri: a string match needs one of exact, prefix or regex"]
    assert problems(
        "VirtualService",
        {
            "hosts": ["r"],
            "http": [{"match": [{"headers": {"End-User": {"exact": "a"}}}], "route": ROUTE}],
        },
    ) == [
        "spec.http[0].match[0].headers.End-User: header name 'End-User' must be lowercase token characters"
    ]


def test_string_match_oneof_is_exclusive():
    spec = {
        "hosts": ["r"],
        "http": [{"match": [{"uri": {"exact": "/a", "prefix": "/"}}], "route": ROUTE}],
    }
    assert problems("VirtualService", spec) == [
        "spec.http[0].match[0].uri.prefix: only one of 'exact' and 'prefix' may be set"
    ]


def test_fault_checks():
    def fault(f):
        return {"hosts": ["r"], "http": [{"fault": f, "route": ROUTE}]}

    assert problems("VirtualService", fault({})) == [
        "spec.http[0].fault: a fault needs a delay or an abort"
    ]
    assert problems(
        "VirtualService", fault({"abort": {"httpStatus": 700, "percentage": {"value": 50}}})
    ) == ["spec.http[0].fault.abort.httpStatus: 700 is not in [200, 599]"]
    assert problems(
        "VirtualService", fault({"delay": {"fixedDelay": "1s", "percentage": {"value": 150}}})
    ) == ["spec.http[0].fault.delay.percentage.value: percentage 150.0 is out of range [0, 100]"]


def test_single_destination_needs_no_weight_and_gateway_names():
    (vs,) = load(
        "VirtualService",
        {"hosts": ["*"], "gateways": ["istio-system/gw", "mesh"], "http": [{"route": ROUTE}]},
    )
    assert list(vs.spec.gateways) == ["istio-system/gw", "mesh"]
    assert problems(
        "VirtualService", {"hosts": ["r"], "gateways": ["Bad/gw"], "http": [{"route": ROUTE}]}
    ) == ["spec.gateways[0]: 'Bad/gw': 'Bad' is not a valid namespace"]


def test_destination_rule_checks():
    assert problems("DestinationRule", {}) == ["spec.host: a DestinationRule needs a host"]
    spec = {
        "host": "reviews",
        "trafficPolicy": {
            "outlierDetection": {"interval": "0s", "maxEjectionPercent": 120},
            "portLevelSettings": [{"port": {"number": 9080}}, {"port": {"number": 9080}}],
        },
        "subsets": [{"name": "V1"}],
    }
    assert problems("DestinationRule", spec) == [
        "spec.trafficPolicy.outlierDetection.interval: interval must be at least 1ms, got 0.0s",
        "spec.trafficPolicy.outlierDetection.maxEjectionPercent: percentage 120 is out of range [0, 100]",
        "spec.trafficPolicy.portLevelSettings[1]: duplicate port '9080'",
        "spec.subsets[0].name: 'V1' is not a valid subset name",
    ]


def test_load_balancer_enum_must_be_known():
    spec = {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}}
    (problem,) = problems("DestinationRule", spec)
    assert problem.startswith(
        "spec.trafficPolicy.loadBalancer.simple: invalid value 'FASTEST': expected one of"
    )
    (ok,) = load(
        "DestinationRule",
        {"host": "reviews", "trafficPolicy": {"loadBalancer": {"simple": "RANDOM"}}},
    )
    assert ok.spec.traffic_policy.load_balancer.simple != 0


def test_gateway_checks():
    assert problems("Gateway", {}) == ["spec.servers: a Gateway needs at least one server"]
    server = {"port": {"number": 443, "name": "https", "protocol": "HTTPS"}, "hosts": ["*"]}
    assert problems("Gateway", {"servers": [server]}) == [
        "spec.servers[0].tls: an HTTPS server needs tls settings"
    ]
    http = {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
    assert problems(
        "Gateway",
        {"servers": [http, dict(http, port={"number": 81, "name": "http", "protocol": "HTTP"})]},
    ) == ["spec.servers[1]: duplicate port name 'http'"]
    assert problems(
        "Gateway", {"servers": [dict(http, port={"number": 80, "name": "x", "protocol": "SMTP"})]}
    )[0].startswith("spec.servers[0].port.protocol: unknown protocol 'SMTP'")


def test_service_entry_checks():
    spec = {
        "hosts": ["db.example.com"],
        "ports": [
            {"number": 5432, "name": "tcp", "protocol": "TCP"},
            {"number": 5432, "name": "tcp2", "protocol": "TCP"},
        ],
        "resolution": "STATIC",
    }
    assert problems("ServiceEntry", spec) == [
        "spec.ports[1]: duplicate port number '5432'",
        "spec.endpoints: STATIC resolution needs endpoints or a workloadSelector",
    ]
    spec = {
        "hosts": ["reviews.default.svc.cluster.local"],
        "ports": [{"number": 9080, "name": "http", "protocol": "HTTP"}],
        "resolution": "STATIC",
        "endpoints": [
            {"address": "127.0.1.5", "ports": {"grpc": 9090}, "labels": {"version": "v1"}}
        ],
    }
    assert problems("ServiceEntry", spec) == [
        "spec.endpoints[0].ports.grpc: no service port is named 'grpc'"
    ]


def test_workload_entry_and_sidecar():
    (we,) = load(
        "WorkloadEntry",
        {
            "address": "127.0.1.7",
            "labels": {"app": "reviews", "version": "v2"},
            "serviceAccount": "bookinfo-reviews",
        },
    )
    assert we.spec.address == "127.0.1.7"
    assert problems("WorkloadEntry", {"labels": {"app": "x"}}) == [
        "spec.address: a workload needs an address"
    ]
    assert problems("Sidecar", {"egress": [{"hosts": ["reviews"]}]}) == [
        "spec.egress[0].hosts[0]: 'reviews' must be written namespace/host"
    ]
    (sidecar,) = load("Sidecar", {"egress": [{"hosts": ["./*", "istio-system/*"]}]})
    assert list(sidecar.spec.egress[0].hosts) == ["./*", "istio-system/*"]
