"""DestinationRule: traffic policy, connection pool, load balancer, outlier detection, client
TLS; parameter ids are Istio's case names (TestValidateConnectionPool, ...)."""

from __future__ import annotations

import pytest

from pkg.config.validation.testing import check, validate


def dr(policy: dict) -> dict:
    return {"host": "reviews", "trafficPolicy": policy}


@pytest.mark.parametrize(
    ("pool", "error"),
    [
        pytest.param(
            {
                "tcp": {"maxConnections": 7, "connectTimeout": "0.0042s"},
                "http": {
                    "http1MaxPendingRequests": 2,
                    "http2MaxRequests": 11,
                    "maxRequestsPerConnection": 5,
                    "maxRetries": 4,
                    "idleTimeout": "30s",
                    "maxConcurrentStreams": 5,
                },
            },
            "only durations to ms precision are supported",
            id="valid connection pool, tcp and http, sub-ms connect timeout",
        ),
        pytest.param(
            {"tcp": {"maxConnections": 7, "connectTimeout": "0.004s"}, "http": {"maxRetries": 4}},
            None,
            id="valid connection pool, tcp and http",
        ),
        pytest.param({"tcp": {"maxConnections": 8}}, None, id="valid connection pool, tcp only"),
        pytest.param(
            {"http": {"http2MaxRequests": 11}}, None, id="valid connection pool, http only"
        ),
        pytest.param(
            {}, "connection pool must have at least one field", id="invalid connection pool, empty"
        ),
        pytest.param(
            {"tcp": {"maxConnections": -1}},
            "max connections must be non-negative",
            id="invalid connection pool, bad max connections",
        ),
        pytest.param(
            {"tcp": {"connectTimeout": "0.0001s"}},
            "duration must be greater than 1ms",
            id="invalid connection pool, bad connect timeout",
        ),
        pytest.param(
            {"http": {"http1MaxPendingRequests": -1}},
            "http1 max pending requests must be non-negative",
            id="invalid connection pool, bad max pending requests",
        ),
        pytest.param(
            {"http": {"http2MaxRequests": -1}},
            "http2 max requests must be non-negative",
            id="invalid connection pool, bad max requests",
        ),
        pytest.param(
            {"http": {"maxRequestsPerConnection": -1}},
            "max requests per connection must be non-negative",
            id="invalid connection pool, bad max requests per connection",
        ),
        pytest.param(
            {"http": {"maxRetries": -1}},
            "max retries must be non-negative",
            id="invalid connection pool, bad max retries",
        ),
        pytest.param(
            {"http": {"idleTimeout": "0.0001s"}},
            "duration must be greater than 1ms",
            id="invalid connection pool, bad idle timeout",
        ),
        pytest.param(
            {"tcp": {"idleTimeout": "0s"}}, None, id="valid connection pool, tcp timeout disabled"
        ),
        pytest.param(
            {"http": {"maxConcurrentStreams": -1}},
            "max concurrent streams must be non-negative",
            id="invalid connection pool, bad max concurrent streams",
        ),
        pytest.param(
            {"http": {"h2UpgradePolicy": "UPGRADE", "useClientProtocol": True}},
            "use client protocol must not be true when H2UpgradePolicy is UPGRADE",
            id="invalid traffic policy, both upgrade and use client protocol set",
        ),
    ],
)
def test_validate_connection_pool(pool: dict, error: str | None):
    check(validate("DestinationRule", dr({"connectionPool": pool})), error)


@pytest.mark.parametrize(
    ("lb", "error"),
    [
        pytest.param(
            {"simple": "ROUND_ROBIN"}, None, id="valid load balancer with simple load balancing"
        ),
        pytest.param(
            {"consistentHash": {"httpCookie": {"name": "test", "ttl": "0s"}}},
            None,
            id="valid load balancer with consistentHash load balancing",
        ),
        pytest.param(
            {"consistentHash": {"httpCookie": {"ttl": "0s"}}},
            "name required for HttpCookie",
            id="invalid load balancer with consistentHash load balancing, missing name",
        ),
        pytest.param(
            {"consistentHash": {"useSourceIp": True, "maglev": {"tableSize": 1000}}},
            "tableSize must be a prime number for maglev",
            id="invalid load balancer with consistentHash load balancing, maglev not prime",
        ),
        pytest.param(
            {
                "consistentHash": {
                    "httpCookie": {"name": "c", "attributes": [{"name": "a"}, {"name": "a"}]}
                }
            },
            "duplicate cookie attribute name: a",
            id="invalid load balancer with consistentHash load balancing and duplicate cookie attribute names",
        ),
        pytest.param(
            {"consistentHash": {"httpCookie": {"name": "c", "attributes": [{"value": "v"}]}}},
            "cookie attribute name cannot be empty",
            id="invalid load balancer with consistentHash load balancing and empty cookie attribute name",
        ),
        pytest.param(
            {"warmup": {"duration": "300s", "minimumPercent": 150}},
            "minimumPercent value should be less than or equal to 100",
            id="warmup minimumPercent over 100",
        ),
        pytest.param(
            {"warmup": {"minimumPercent": 5}}, "duration is required", id="warmup without duration"
        ),
        pytest.param(
            {"warmup": {"duration": "300s", "aggression": -0.1}},
            "aggression should be greater than or equal to 1",
            id="warmup aggression below 1",
        ),
    ],
)
def test_validate_load_balancer(lb: dict, error: str | None):
    check(validate("DestinationRule", dr({"loadBalancer": lb})), error)


@pytest.mark.parametrize(
    ("outlier", "error"),
    [
        pytest.param(
            {"interval": "10s", "baseEjectionTime": "5s", "maxEjectionPercent": 50},
            None,
            id="valid outlier detection",
        ),
        pytest.param(
            {"interval": "0.0001s"},
            "duration must be greater than 1ms",
            id="invalid outlier detection, bad interval",
        ),
        pytest.param(
            {"maxEjectionPercent": 105},
            "percentage 105 is not in range 0..100",
            id="invalid outlier detection, bad max ejection percent",
        ),
        pytest.param(
            {"consecutiveLocalOriginFailures": 5},
            "outlier detection consecutive local origin failures is specified, but split external local origin errors is set to false",
            id="invalid outlier detection, consecutive local origin errors without split",
        ),
    ],
)
def test_validate_outlier_detection(outlier: dict, error: str | None):
    check(validate("DestinationRule", dr({"outlierDetection": outlier})), error)


def test_validate_outlier_detection_deprecated_consecutive_errors_warns():
    outcome = validate("DestinationRule", dr({"outlierDetection": {"consecutiveErrors": 5}}))
    assert outcome.ok
    assert outcome.has_warning("outlier detection consecutive errors is deprecated")


@pytest.mark.parametrize(
    ("tls", "error"),
    [
        pytest.param(
            {"mode": "SIMPLE", "credentialName": "secret"},
            None,
            id="SIMPLE: Credential Name set correctly",
        ),
        pytest.param(
            {"mode": "SIMPLE", "credentialName": "secret", "clientCertificate": "c"},
            "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
            id="SIMPLE CredentialName set with ClientCertificate specified",
        ),
        pytest.param(
            {"mode": "MUTUAL", "credentialName": "secret", "caCrl": "crl"},
            "cannot specify client certificates or CA certificate or CA CRL If credentialName is set",
            id="MUTUAL: CredentialName set with CACRL specified",
        ),
        pytest.param(
            {"mode": "MUTUAL", "clientCertificate": "c", "privateKey": "k"},
            None,
            id="MUTUAL: CredentialName not set with ClientCertificate and Key specified",
        ),
        pytest.param(
            {"mode": "MUTUAL", "clientCertificate": "c"},
            "private key required for mutual tls",
            id="MUTUAL: CredentialName not set with ClientCertificate specified and Key missing",
        ),
        pytest.param(
            {"mode": "MUTUAL", "privateKey": "k"},
            "client certificate required for mutual tls",
            id="MUTUAL: CredentialName not set with ClientCertificate missing and Key specified",
        ),
        pytest.param(
            {"mode": "SIMPLE", "caCertificates": "ca"},
            None,
            id="InsecureSkipVerify is not specified with tls mode simple, and the ca cert is specified by CaCertificates",
        ),
        pytest.param(
            {"mode": "SIMPLE", "insecureSkipVerify": True, "caCertificates": "ca"},
            "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
            id="InsecureSkipVerify is set true with tls mode simple, and the ca cert is specified by CaCertificates",
        ),
        pytest.param(
            {"mode": "SIMPLE", "insecureSkipVerify": True, "subjectAltNames": ["a.b"]},
            "cannot specify CaCertificates or CredentialName or SubjectAltNames when InsecureSkipVerify is set true",
            id="InsecureSkipVerify is set true with tls mode simple, and the subject alt names are specified",
        ),
        pytest.param(
            {
                "mode": "MUTUAL",
                "insecureSkipVerify": True,
                "subjectAltNames": ["a.b"],
                "credentialName": "s",
            },
            "cannot specify CaCertificates or SubjectAltNames when InsecureSkipVerify is set true",
            id="InsecureSkipVerify is set true with tls mode mutual, and the subject alt names are specified",
        ),
        pytest.param(
            {"mode": "SIMPLE", "insecureSkipVerify": True},
            None,
            id="InsecureSkipVerify is set true with tls mode simple",
        ),
    ],
)
def test_validate_tls(tls: dict, error: str | None):
    check(validate("DestinationRule", dr({"tls": tls})), error)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param(
            {"host": "reviews", "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
            None,
            id="simple destination rule",
        ),
        pytest.param(
            {"host": "", "subsets": [{"name": "v1"}]},
            "empty domain name not allowed",
            id="missing destination name",
        ),
        pytest.param(
            {"host": "reviews", "subsets": [{"name": "v1"}, {"name": "v1"}]},
            "duplicate subset names: v1",
            id="duplicate subset names",
        ),
        pytest.param(
            {"host": "reviews", "subsets": [{"name": ""}]},
            "subset name cannot be empty",
            id="missing subset name",
        ),
        pytest.param(
            {"host": "reviews", "trafficPolicy": {}},
            "traffic policy must have at least one field",
            id="invalid traffic policy, nil entries",
        ),
        pytest.param(
            {
                "host": "reviews",
                "trafficPolicy": {"portLevelSettings": [{"loadBalancer": {"simple": "RANDOM"}}]},
            },
            "portTrafficPolicy must have valid port",
            id="invalid traffic policy, missing port in port level settings",
        ),
        pytest.param(
            {
                "host": "reviews",
                "trafficPolicy": {
                    "tunnel": {"targetHost": "a.b", "targetPort": 80},
                    "proxyProtocol": {},
                },
            },
            "tunnel and proxyProtocol must not be set together",
            id="tunnel and proxy protocol",
        ),
        pytest.param(
            {
                "host": "reviews",
                "workloadSelector": {"matchLabels": {"app": "a"}},
                "exportTo": ["*"],
            },
            "destination rule with workload selector cannot have exportTo beyond current namespace",
            id="workload selector with exportTo *",
        ),
    ],
)
def test_validate_destination_rule(spec: dict, error: str | None):
    check(validate("DestinationRule", spec), error)


def locality(setting: dict, outlier: bool = True) -> dict:
    policy: dict = {"loadBalancer": {"localityLbSetting": setting}}
    if outlier:
        policy["outlierDetection"] = {"interval": "1s"}
    return dr(policy)


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        pytest.param(
            {"distribute": [{"from": "a/b/*", "to": {"a/b/*": 80, "a/c/*": 20}}]},
            None,
            id="valid distribute",
        ),
        pytest.param(
            {"failover": [{"from": "region1", "to": "region2"}]}, None, id="valid failover"
        ),
        pytest.param(
            {"failoverPriority": ["topology.istio.io/network", "topology.kubernetes.io/region"]},
            None,
            id="valid failoverPriority",
        ),
        pytest.param(
            {
                "failover": [{"from": "region1", "to": "region2"}],
                "failoverPriority": ["topology.istio.io/network"],
            },
            None,
            id="failover with a non-topology failoverPriority label",
        ),
        pytest.param(
            {
                "failover": [{"from": "region1", "to": "region2"}],
                "failoverPriority": ["topology.kubernetes.io/zone"],
            },
            "can not simultaneously set 'failover' and topology label "
            "'topology.kubernetes.io/zone' in 'failover_priority'",
            id="failover with a topology failoverPriority label",
        ),
        pytest.param(
            {
                "distribute": [{"from": "a/*", "to": {"a/*": 100}}],
                "failover": [{"from": "a", "to": "b"}],
            },
            "can not simultaneously specify 'distribute' and 'failover'",
            id="distribute and failover",
        ),
        pytest.param(
            {"distribute": [{"from": "a/*", "to": {"a/*": 80, "b/*": 30}}]},
            "total locality weight 110 != 100",
            id="weights over 100",
        ),
        pytest.param(
            {"distribute": [{"from": "a/*", "to": {"a/*": 100, "b/*": 0}}]},
            "locality weight must be in range [1, 100]",
            id="a zero weight",
        ),
        pytest.param(
            {"distribute": [{"from": "a/*/c", "to": {"a/*": 100}}]},
            "locality a/*/c wildcard '*' number can not exceed 1 and must be in the end",
            id="a wildcard inside a source",
        ),
        pytest.param(
            {"distribute": [{"from": "a/*", "to": {"a//c": 100}}]},
            "locality a//c must not contain empty region/zone/subzone info",
            id="an empty zone in a target",
        ),
        pytest.param(
            {"distribute": [{"from": "a/*", "to": {"a/*": 50, "a/b": 50}}]},
            "overlap with previous specified ones",
            id="overlapping targets",
        ),
        pytest.param(
            {
                "distribute": [
                    {"from": "a/b", "to": {"a/*": 100}},
                    {"from": "a/b/c", "to": {"a/*": 100}},
                ]
            },
            "locality a/b/c overlap with previous specified ones",
            id="overlapping sources",
        ),
        pytest.param(
            {"failover": [{"from": "a/b", "to": "c"}]},
            "locality lb failover only specify region",
            id="failover names a zone",
        ),
        pytest.param(
            {"failover": [{"from": "a*", "to": "c"}]},
            "locality lb failover region should not contain '*' wildcard",
            id="failover with a wildcard",
        ),
    ],
)
def test_validate_locality_lb_setting(setting: dict, error: str | None):
    check(validate("DestinationRule", locality(setting)), error)


def test_failover_without_outlier_detection_only_warns():
    outcome = validate(
        "DestinationRule", locality({"failover": [{"from": "a", "to": "b"}]}, outlier=False)
    )
    assert outcome.ok
    assert outcome.has_warning("outlier detection policy must be provided for failover")
