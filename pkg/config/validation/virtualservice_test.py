"""VirtualService as a whole: hosts, gateways, TLS/TCP routes, removed fields (Istio's cases)."""

from __future__ import annotations

import pytest

from pkg.config.validation.testing import check, validate

ROUTE = [{"route": [{"destination": {"host": "foo.baz"}}]}]


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param({"hosts": ["foo.bar"], "http": ROUTE}, None, id="simple"),
        pytest.param(
            {
                "hosts": ["outbound_.80_._.e2e.foobar.mesh"],
                "gateways": ["ns/gw"],
                "tls": [
                    {
                        "match": [{"sniHosts": ["outbound_.80_._.e2e.foobar.mesh"]}],
                        "route": [{"destination": {"host": "foo.baz"}}],
                    }
                ],
            },
            None,
            id="allow sni based domains",
        ),
        pytest.param(
            {"hosts": ["*.foo.bar", "*.bar"], "http": ROUTE},
            "duplicate hosts in virtual service: *.foo.bar & *.bar",
            id="duplicate hosts",
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "http": [{}]},
            "HTTP route, redirect or direct_response is required",
            id="with no destination",
        ),
        pytest.param({"http": ROUTE}, None, id="delegate with no hosts"),
        pytest.param(
            {"http": ROUTE, "gateways": ["ns/gw"]},
            "delegate virtual service must have no gateways specified",
            id="delegate with gateways",
        ),
        pytest.param({"hosts": ["foo.ba!r"], "http": ROUTE}, "domain name", id="bad host"),
        pytest.param(
            {"hosts": ["foo.bar"]},
            "http, tcp or tls must be provided in virtual service",
            id="no tcp or http routing",
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "gateways": ["b@r"], "http": ROUTE}, "invalid", id="bad gateway"
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "gateways": ["ns1/gateway"], "http": ROUTE},
            None,
            id="namespace/name for gateway",
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "gateways": ["ns1/*"], "http": ROUTE},
            'invalid value for gateway name: "*"',
            id="namespace/* for gateway",
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "gateways": ["*/gateway"], "http": ROUTE},
            'invalid value for namespace: "*"',
            id="*/name for gateway",
        ),
        pytest.param(
            {"hosts": ["*"], "http": ROUTE},
            "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            id="wildcard for mesh gateway",
        ),
        pytest.param(
            {"hosts": ["*"], "gateways": ["mesh", "ns/gw"], "http": ROUTE},
            "wildcard host * is not allowed for virtual services bound to the mesh gateway",
            id="wildcard for mesh and another gateway",
        ),
        pytest.param(
            {"hosts": ["*"], "gateways": ["ns/somegateway"], "http": ROUTE},
            None,
            id="wildcard for non-mesh gateway",
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "tcp": [{"match": []}]},
            "TCP route is required",
            id="missing tcp route",
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "tls": [{"match": [{"sniHosts": ["foo.bar"]}]}]},
            "TLS route is required",
            id="missing tls route",
        ),
        pytest.param(
            {
                "hosts": ["foo.bar"],
                "http": [
                    {
                        "match": [{"headers": {"@request.auth.claims.foo": {"exact": "bar"}}}],
                        "route": ROUTE[0]["route"],
                    }
                ],
            },
            "JWT claim based routing (key: @request.auth.claims.foo) is only supported for gateway",
            id="jwt claim route without gateway",
        ),
        pytest.param(
            {
                "hosts": ["foo.bar"],
                "gateways": ["ns/gw"],
                "http": [
                    {
                        "match": [{"headers": {"@request.auth.claims.foo": {"exact": "bar"}}}],
                        "route": ROUTE[0]["route"],
                    }
                ],
            },
            None,
            id="jwt claim route with gateway",
        ),
        pytest.param(
            {
                "hosts": ["foo.bar"],
                "tls": [
                    {
                        "match": [{"sniHosts": ["1.1.1.1"]}],
                        "route": [{"destination": {"host": "foo.baz"}}],
                    }
                ],
            },
            None,
            id="ip address as sni host",
        ),
        pytest.param(
            {
                "hosts": ["foo.bar"],
                "tls": [
                    {
                        "match": [{"sniHosts": ["foo.*.com"]}],
                        "route": [{"destination": {"host": "foo.baz"}}],
                    }
                ],
            },
            "domain name",
            id="invalid wildcard as sni host",
        ),
        pytest.param(
            {
                "hosts": ["foo.bar"],
                "tls": [
                    {
                        "match": [{"sniHosts": ["other.com"]}],
                        "route": [{"destination": {"host": "a.b"}}],
                    }
                ],
            },
            "is not a compatible subset of any of the virtual service hosts",
            id="sni host not a subset of the hosts",
        ),
        pytest.param(
            {"hosts": ["foo.bar"], "http": ROUTE, "exportTo": ["*", "ns1"]},
            "cannot have both public (*) and non-public exportTo values",
            id="exportTo public and namespace",
        ),
    ],
)
def test_validate_virtual_service(spec: dict, error: str | None):
    check(validate("VirtualService", spec), error)


def test_validate_virtual_service_header_names_are_http_tokens():
    """Istio 1.2x takes any token (Envoy matches names case-insensitively), pseudo-headers too."""
    for name in ("End-User", ":authority", "x-b3-traceid"):
        spec = {
            "hosts": ["r"],
            "http": [{"match": [{"headers": {name: {"exact": "a"}}}], **ROUTE[0]}],
        }
        check(validate("VirtualService", spec), None)
    spec = {"hosts": ["r"], "http": [{"match": [{"headers": {"a b": {"exact": "a"}}}], **ROUTE[0]}]}
    check(validate("VirtualService", spec), "header name a b is not a valid header name")


def test_validate_virtual_service_jwt_claim_routing_on_gateways_is_accepted():
    spec = {
        "hosts": ["foo.bar"],
        "gateways": ["ns/gw"],
        "http": [
            {"match": [{"headers": {"@request.auth.claims[sub]": {"exact": "a"}}}], **ROUTE[0]}
        ],
    }
    outcome = validate("VirtualService", spec)
    assert outcome.ok
    assert not outcome.has_warning("JWT claim")


def test_validate_virtual_service_unreachable_rules_are_warnings():
    spec = {
        "hosts": ["foo.bar"],
        "http": [
            {"match": [{"uri": {"prefix": "/a"}}], **ROUTE[0]},
            {"match": [{"uri": {"prefix": "/a"}}], **ROUTE[0]},
            ROUTE[0],
            ROUTE[0],
        ],
    }
    outcome = validate("VirtualService", spec)
    assert outcome.ok, outcome.errors
    assert outcome.has_warning("virtualService rule #1 match #0 is not used")
    assert outcome.has_warning(
        "virtualService rule #3 not used (only the last rule can have no matches)"
    )


@pytest.mark.parametrize(
    ("http", "warning", "moved"),
    [
        pytest.param(
            {"websocketUpgrade": True, **ROUTE[0]},
            "spec.http[0].websocketUpgrade: removed from Istio's API (websocket upgrades are done automatically since Istio 1.0); ignored",
            {},
            id="websocketUpgrade",
        ),
        pytest.param(
            {"appendHeaders": {"x": "y"}, **ROUTE[0]},
            "read as spec.http[0].headers.request.add",
            {"headers": {"request": {"add": {"x": "y"}}}},
            id="appendHeaders",
        ),
        pytest.param(
            {"removeResponseHeaders": ["server"], **ROUTE[0]},
            "read as spec.http[0].headers.response.remove",
            {"headers": {"response": {"remove": ["server"]}}},
            id="removeResponseHeaders",
        ),
        pytest.param(
            {"fault": {"abort": {"httpStatus": 500, "percent": 10}}, **ROUTE[0]},
            "read as spec.http[0].fault.abort.percentage",
            {"fault": {"abort": {"httpStatus": 500, "percentage": {"value": 10.0}}}},
            id="abort.percent",
        ),
        pytest.param(
            {
                "fault": {"abort": {"httpStatus": 500, "percent": 10, "percentage": {"value": 5}}},
                **ROUTE[0],
            },
            "ignored, as spec.http[0].fault.abort.percentage is set too",
            {"fault": {"abort": {"httpStatus": 500, "percentage": {"value": 5.0}}}},
            id="abort.percent beside percentage",
        ),
    ],
)
def test_removed_fields_are_accepted_with_a_warning(http: dict, warning: str, moved: dict):
    from pkg.config import loader
    from pkg.config.resource import spec_to_dict

    spec = {"hosts": ["foo.bar"], "http": [http]}
    outcome = validate("VirtualService", spec)
    assert outcome.ok, outcome.errors
    assert outcome.has_warning(warning), outcome.warnings
    doc = {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": "x"},
        "spec": spec,
    }
    (resource,) = [loader.load_object(doc)]
    route = spec_to_dict(resource.spec)["http"][0]
    for key, value in moved.items():
        assert route[key] == value


def test_removed_route_destination_headers_move_to_headers():
    spec = {
        "hosts": ["foo.bar"],
        "http": [
            {
                "route": [
                    {"destination": {"host": "a.b"}, "appendRequestHeaders": {"x": "1"}},
                ]
            }
        ],
    }
    outcome = validate("VirtualService", spec)
    assert outcome.ok
    assert outcome.has_warning("read as spec.http[0].route[0].headers.request.add")
