"""The shape check: Go-style durations, integer forms, and normalization for the parser."""

import pytest

from api.networking.v1alpha3 import destination_rule_pb2
from pkg.config.validation.result import FieldPath, ValidationResult
from pkg.config.validation.structure import check_message, parse_duration


@pytest.mark.parametrize(
    ("text", "proto"),
    [
        ("7s", "7s"),
        ("0.5s", "0.500000000s"),
        ("30ms", "0.030000000s"),
        ("5m", "300s"),
        ("1h30m", "5400s"),
        ("1.5h", "5400s"),
        ("250us", "0.000250000s"),
        ("-2s", "-2s"),
    ],
)
def test_go_durations_become_seconds(text: str, proto: str):
    assert parse_duration(text) == proto


@pytest.mark.parametrize("text", ["", "5", "5 seconds", "s", "1d", "1.2.3s"])
def test_malformed_durations(text: str):
    assert parse_duration(text) is None


def test_normalizes_nested_durations_and_integer_strings():
    out = ValidationResult()
    data = {
        "host": "reviews",
        "trafficPolicy": {
            "connectionPool": {"tcp": {"connectTimeout": "30ms", "maxConnections": "100"}},
            "outlierDetection": {"interval": "5m", "baseEjectionTime": "15m"},
        },
    }
    normalized = check_message(
        data, destination_rule_pb2.DestinationRule.DESCRIPTOR, FieldPath("spec"), out
    )
    assert out.ok, out.problems
    policy = normalized["trafficPolicy"]
    assert policy["connectionPool"]["tcp"]["connectTimeout"] == "0.030000000s"
    assert policy["outlierDetection"]["interval"] == "300s"


def test_out_of_range_integer():
    out = ValidationResult()
    check_message(
        {"connectionPool": {"tcp": {"maxConnections": 2**40}}},
        destination_rule_pb2.TrafficPolicy.DESCRIPTOR,
        FieldPath("spec"),
        out,
    )
    assert [str(p) for p in out.errors] == [
        "spec.connectionPool.tcp.maxConnections: 1099511627776 is out of range [-2147483648, 2147483647]"
    ]


def test_oneof_members_are_exclusive():
    from pkg.config.validation.testing import validate

    spec = {
        "hosts": ["r"],
        "http": [
            {
                "match": [{"uri": {"exact": "/a", "prefix": "/"}}],
                "route": [{"destination": {"host": "r"}}],
            }
        ],
    }
    assert validate("VirtualService", spec).errors == [
        "spec.http[0].match[0].uri.prefix: only one of 'exact' and 'prefix' may be set"
    ]


def test_enum_values_must_be_known():
    from pkg.config.validation.testing import validate

    outcome = validate(
        "DestinationRule", {"host": "r", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}}
    )
    (problem,) = outcome.errors
    assert problem.startswith(
        "spec.trafficPolicy.loadBalancer.simple: invalid value 'FASTEST': expected one of"
    )


@pytest.mark.parametrize(
    ("text", "proto"),
    [("99999999999999999999h", None), ("9" * 5000 + "s", None), ("2562047h", "9223369200s")],
)
def test_durations_beyond_go_range_are_malformed(text: str, proto: str | None):
    assert parse_duration(text) == proto


def test_integer_map_keys_are_checked():
    from pkg.config.validation.testing import validate

    outcome = validate(
        "PeerAuthentication",
        {"selector": {"matchLabels": {"a": "b"}}, "portLevelMtls": {"http": {"mode": "STRICT"}}},
    )
    assert outcome.errors == [
        "spec.portLevelMtls.http: invalid map key: expected an integer, got 'http'"
    ]


def test_empty_lists_and_maps_are_remembered():
    out = ValidationResult()
    check_message(
        {"host": "r", "subsets": [], "trafficPolicy": {"portLevelSettings": []}},
        destination_rule_pb2.DestinationRule.DESCRIPTOR,
        FieldPath("spec"),
        out,
    )
    assert out.empty_fields == {"spec.subsets", "spec.trafficPolicy.portLevelSettings"}
