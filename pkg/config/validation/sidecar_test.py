"""Sidecar; parameter ids are Istio's case names (TestValidateSidecar)."""

from __future__ import annotations

import pytest

from pkg.config.validation.testing import check, validate

ALL = {"hosts": ["*/*"]}


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param({}, "sidecar: empty configuration provided", id="empty ingress and egress"),
        pytest.param({"egress": [ALL]}, None, id="default"),
        pytest.param(
            {"egress": [{"hosts": ["./*"]}]}, None, id="import local namespace with wildcard"
        ),
        pytest.param(
            {"egress": [{"hosts": ["./foo.com"]}]}, None, id="import local namespace with fqdn"
        ),
        pytest.param({"egress": [{"hosts": ["~/*"]}]}, None, id="import nothing"),
        pytest.param(
            {"egress": [{"hosts": ["foo/bar/baz"]}]}, "domain name", id="bad egress host 1"
        ),
        pytest.param(
            {"egress": [{"hosts": ["/"]}]},
            "config namespace and dnsName in host entry cannot be empty",
            id="bad egress host 2",
        ),
        pytest.param(
            {"egress": [{"hosts": []}]},
            "sidecar: egress listener must contain at least one host",
            id="empty egress host",
        ),
        pytest.param(
            {"egress": [ALL, ALL]},
            "sidecar: egress can have only one listener with empty port",
            id="multiple wildcard egress",
        ),
        pytest.param(
            {
                "egress": [
                    ALL,
                    {
                        "port": {"number": 8080, "protocol": "http", "name": "h8080"},
                        "hosts": ["ns1/bar.com"],
                    },
                ]
            },
            "sidecar: the egress listener with empty port should be the last listener in the list",
            id="wildcard egress not in end",
        ),
        pytest.param(
            {
                "egress": [
                    {
                        "port": {"number": 90000, "protocol": "http", "name": "h"},
                        "hosts": ["ns1/bar.com"],
                    }
                ]
            },
            "port number 90000 must be in the range 1..65535",
            id="invalid Port",
        ),
        pytest.param(
            {"egress": [{"port": {"number": 8080, "protocol": "http"}, "hosts": ["ns1/bar.com"]}]},
            None,
            id="Port without name",
        ),
        pytest.param(
            {
                "egress": [
                    {
                        "port": {"protocol": "http", "name": "u"},
                        "bind": "unix:///@foo/bar/com",
                        "hosts": ["ns1/bar.com"],
                    }
                ]
            },
            None,
            id="UDS bind in outbound",
        ),
        pytest.param(
            {
                "egress": [
                    {
                        "port": {"number": 8080, "protocol": "http", "name": "h"},
                        "bind": "foobar:",
                        "hosts": ["ns1/bar.com"],
                    }
                ]
            },
            "foobar: is not a valid IP",
            id="invalid bind",
        ),
        pytest.param(
            {
                "egress": [
                    {
                        "port": {"protocol": "http", "name": "u"},
                        "bind": "unix:///@foo/bar/com",
                        "captureMode": "IPTABLES",
                        "hosts": ["ns1/bar.com"],
                    }
                ]
            },
            "sidecar: captureMode must be DEFAULT/NONE for unix domain socket listeners",
            id="invalid capture mode with uds bind",
        ),
        pytest.param(
            {
                "egress": [
                    {
                        "port": {"number": 90, "protocol": "tcp", "name": "a"},
                        "hosts": ["ns1/bar.com"],
                    },
                    {
                        "port": {"number": 90, "protocol": "tcp", "name": "b"},
                        "hosts": ["ns2/bar.com"],
                    },
                ]
            },
            "sidecar: ports on IP bound listeners must be unique",
            id="duplicate ports",
        ),
        pytest.param(
            {"ingress": [{"defaultEndpoint": "127.0.0.1:110"}], "egress": [ALL]},
            "sidecar: port is required for ingress listeners",
            id="ingress without port",
        ),
        pytest.param(
            {
                "ingress": [
                    {
                        "port": {"number": 90, "protocol": "tcp", "name": "foo"},
                        "defaultEndpoint": "1.1.1.1:90",
                    }
                ],
                "egress": [ALL],
            },
            "sidecar: defaultEndpoint must be of form 127.0.0.1:<port>",
            id="ingress with invalid default endpoint in IPv4",
        ),
        pytest.param(
            {
                "ingress": [
                    {
                        "port": {"number": 90, "protocol": "tcp", "name": "foo"},
                        "defaultEndpoint": "127.0.0.1:hi",
                    }
                ],
                "egress": [ALL],
            },
            "sidecar: defaultEndpoint port (hi) is not a number",
            id="ingress with invalid default endpoint port in IPv4",
        ),
        pytest.param(
            {
                "ingress": [
                    {
                        "port": {"number": 90, "protocol": "tcp", "name": "foo"},
                        "defaultEndpoint": "[::1]:9999",
                    }
                ],
                "egress": [ALL],
            },
            None,
            id="valid ingress and egress in IPv6",
        ),
        pytest.param(
            {"outboundTrafficPolicy": {"mode": "ALLOW_ANY"}},
            None,
            id="just outbound traffic policy",
        ),
        pytest.param(
            {
                "ingress": [
                    {"port": {"number": 90, "name": "foo"}, "defaultEndpoint": "127.0.0.1:9999"}
                ],
                "egress": [ALL],
            },
            None,
            id="empty protocol in IPv4",
        ),
        pytest.param(
            {
                "outboundTrafficPolicy": {
                    "mode": "REGISTRY_ONLY",
                    "egressProxy": {"host": "foo.bar", "port": {"number": 90}},
                }
            },
            "sidecar: egress_proxy must be set only with ALLOW_ANY outbound_traffic_policy mode",
            id="sidecar egress proxy with RESGISTRY_ONLY(default)",
        ),
        pytest.param(
            {
                "outboundTrafficPolicy": {
                    "mode": "ALLOW_ANY",
                    "egressProxy": {"host": "foo.bar", "port": {"number": 90}},
                }
            },
            None,
            id="sidecar egress proxy with ALLOW_ANY",
        ),
        pytest.param(
            {"outboundTrafficPolicy": {"mode": "ALLOW_ANY", "egressProxy": {"host": "foo.bar"}}},
            "sidecar: egress_proxy port must be non-nil",
            id="sidecar egress proxy(without Port) with ALLOW_ANY",
        ),
        pytest.param(
            {"egress": [{"hosts": ["*/foo.*.com"]}]}, "domain name", id="invalid partial wildcard"
        ),
        pytest.param(
            {
                "ingress": [
                    {
                        "port": {"number": 90, "protocol": "HTTPS", "name": "foo"},
                        "tls": {"mode": "ISTIO_MUTUAL"},
                    }
                ],
                "egress": [ALL],
            },
            "configuration is invalid: cannot set mode to ISTIO_MUTUAL in sidecar ingress tls",
            id="ingress tls mode set to ISTIO_MUTUAL in IPv4",
        ),
        pytest.param(
            {
                "ingress": [
                    {
                        "port": {"number": 90, "protocol": "tcp", "name": "foo"},
                        "tls": {"mode": "SIMPLE", "serverCertificate": "c", "privateKey": "k"},
                    }
                ],
                "egress": [ALL],
            },
            "server cannot have TLS settings for non HTTPS/TLS ports",
            id="ingress tls invalid protocol in IPv4",
        ),
        pytest.param(
            {"inboundConnectionPool": {"http": {"http1MaxPendingRequests": 1024}}},
            None,
            id="valid inbound connection pool",
        ),
        pytest.param(
            {"inboundConnectionPool": {}},
            "connection pool must have at least one field",
            id="invalid top level connection pool",
        ),
        pytest.param(
            {
                "ingress": [
                    {
                        "port": {"number": 90, "protocol": "http", "name": "foo"},
                        "connectionPool": {},
                    }
                ],
                "egress": [ALL],
            },
            "connection pool must have at least one field",
            id="invalid port-level connection pool",
        ),
    ],
)
def test_validate_sidecar(spec: dict, error: str | None):
    check(validate("Sidecar", spec), error)


@pytest.mark.parametrize(
    ("spec", "warning"),
    [
        pytest.param(
            {"egress": [ALL], "workloadSelector": {}},
            "workload selector specified without labels",
            id="workload selector without labels",
        ),
        pytest.param(
            {"egress": [{"hosts": ["ns1/*", "ns1/foo.com"]}]},
            "duplicated egress host: ns1/foo.com",
            id="sidecar egress duplicated with wildcarded same namespace",
        ),
        pytest.param(
            {
                "ingress": [
                    {
                        "port": {"number": 90, "protocol": "tcp", "name": "foo"},
                        "connectionPool": {"http": {"maxRetries": 1}},
                    }
                ],
                "egress": [ALL],
            },
            "HTTP connection pool settings are configured for port 90",
            id="warn http connection settings on tcp port",
        ),
    ],
)
def test_validate_sidecar_warnings(spec: dict, warning: str):
    outcome = validate("Sidecar", spec)
    assert outcome.ok, outcome.errors
    assert outcome.has_warning(warning), outcome.warnings


def test_removed_sidecar_localhost_is_accepted_with_a_warning():
    outcome = validate("Sidecar", {"egress": [ALL], "localhost": {"clientTls": {}}})
    assert outcome.ok
    assert outcome.has_warning("spec.localhost: removed from Istio's API")
