"""Parsing and validating the prometheus handler's params."""

from __future__ import annotations

from typing import Any

import pytest

from mixer.adapters.prometheus.params import DEFAULT_BUCKETS, Kind, MetricSpec, parse


def ok(params: dict[str, Any]) -> list[MetricSpec]:
    specs, errors = parse(params)
    assert errors == []
    return specs


def problems(params: Any) -> list[str]:
    return [str(e) for e in parse(params)[1]]


def test_a_full_metric_in_either_spelling():
    camel = {
        "metrics": [
            {
                "name": "requests_total",
                "instanceName": "requestcount.instance.istio-system",
                "kind": "COUNTER",
                "labelNames": ["reporter", "response_code"],
                "description": "requests",
            }
        ]
    }
    snake = {
        "metrics": [
            {
                "name": "requests_total",
                "instance_name": "requestcount.instance.istio-system",
                "kind": "COUNTER",
                "label_names": ["reporter", "response_code"],
                "description": "requests",
            }
        ]
    }
    expected = MetricSpec(
        name="requests_total",
        namespace="istio",
        instance_name="requestcount.instance.istio-system",
        kind=Kind.COUNTER,
        label_names=("reporter", "response_code"),
        description="requests",
    )
    assert ok(camel) == ok(snake) == [expected]
    assert expected.full_name == "istio_requests_total"


def test_names_are_made_safe_and_default_to_the_instance():
    (spec,) = ok(
        {"metrics": [{"instanceName": "request.count", "kind": "GAUGE", "namespace": "my-ns"}]}
    )
    assert spec.full_name == "myns_request_count"


def test_buckets():
    def bounds(buckets: dict[str, Any]) -> tuple[float, ...]:
        (spec,) = ok(
            {"metrics": [{"instanceName": "i", "kind": "DISTRIBUTION", "buckets": buckets}]}
        )
        return spec.buckets

    assert bounds({"explicitBuckets": {"bounds": [1, 2.5, 10]}}) == (1, 2.5, 10)
    assert bounds(
        {"exponentialBuckets": {"numFiniteBuckets": 3.0, "scale": 2, "growthFactor": 10}}
    ) == (
        2,
        20,
        200,
        2000,
    )
    assert bounds({"linear_buckets": {"num_finite_buckets": 2, "width": 0.5}}) == (0, 0.5, 1)
    (spec,) = ok({"metrics": [{"instanceName": "i", "kind": "DISTRIBUTION"}]})
    assert spec.buckets == DEFAULT_BUCKETS


@pytest.mark.parametrize(
    ("metric", "expected"),
    [
        (
            {"kind": "COUNTER"},
            "metrics[0].instanceName: the instance feeding this metric is required",
        ),
        ({"instanceName": "i"}, "metrics[0].kind: required: GAUGE, COUNTER or DISTRIBUTION"),
        (
            {"instanceName": "i", "kind": "HISTOGRAM"},
            "metrics[0].kind: 'HISTOGRAM' is not one of GAUGE, COUNTER, DISTRIBUTION",
        ),
        (
            {"instanceName": "i", "kind": "GAUGE", "labelNames": [""]},
            "metrics[0].labelNames[0]: a label name must be a non-empty string",
        ),
        (
            {"instanceName": "i", "kind": "GAUGE", "labelNames": ["a-b"]},
            "metrics[0].labelNames[0]: 'a-b' is not a valid Prometheus label name",
        ),
        (
            {"instanceName": "i", "kind": "GAUGE", "labelNames": ["__x"]},
            "metrics[0].labelNames[0]: '__x' is not a valid Prometheus label name",
        ),
        (
            {"instanceName": "i", "kind": "GAUGE", "labelNames": ["a", "a"]},
            "metrics[0].labelNames[1]: duplicate label name 'a'",
        ),
        (
            {"instanceName": "i", "kind": "DISTRIBUTION", "labelNames": ["le"]},
            "metrics[0].labelNames[0]: 'le' is reserved for histogram buckets",
        ),
        (
            {"instanceName": "i", "kind": "GAUGE", "labelNames": "a"},
            "metrics[0].labelNames: must be a list of label names",
        ),
        (
            {"instanceName": "i", "kind": "GAUGE", "name": "a$b"},
            "metrics[0].name: istio_a$b is not a valid Prometheus metric name",
        ),
        (
            {"instanceName": "i", "kind": "COUNTER", "buckets": {}},
            "metrics[0].buckets: only a DISTRIBUTION has buckets, not a COUNTER",
        ),
        ({"instanceName": "i", "kind": "GAUGE", "labels": []}, "metrics[0].labels: unknown field"),
        (
            {"instanceName": "i", "kind": "DISTRIBUTION", "buckets": {}},
            "metrics[0].buckets: set exactly one of explicitBuckets, exponentialBuckets, linearBuckets",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {"explicitBuckets": {"bounds": []}},
            },
            "metrics[0].buckets.explicitBuckets.bounds: must be a non-empty list of numbers",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {"explicitBuckets": {"bounds": [1, 1]}},
            },
            "metrics[0].buckets.explicitBuckets.bounds[1]: bounds must be strictly increasing",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {"explicitBuckets": {"bounds": [1, "2"]}},
            },
            "metrics[0].buckets.explicitBuckets.bounds[1]: '2' is not a finite number",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {
                    "exponentialBuckets": {"numFiniteBuckets": 2.5, "scale": 1, "growthFactor": 2}
                },
            },
            "metrics[0].buckets.exponentialBuckets.numFiniteBuckets: must be a whole number from 1 to 1000",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {
                    "exponentialBuckets": {"numFiniteBuckets": 1e9, "scale": 1, "growthFactor": 2}
                },
            },
            "metrics[0].buckets.exponentialBuckets.numFiniteBuckets: must be a whole number from 1 to 1000",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {
                    "exponentialBuckets": {"numFiniteBuckets": 2, "scale": 0, "growthFactor": 2}
                },
            },
            "metrics[0].buckets.exponentialBuckets.scale: must be greater than 0",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {
                    "exponentialBuckets": {"numFiniteBuckets": 2, "scale": 1, "growthFactor": 1}
                },
            },
            "metrics[0].buckets.exponentialBuckets.growthFactor: must be greater than 1",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {"exponentialBuckets": {"numFiniteBuckets": 2, "growthFactor": 2}},
            },
            "metrics[0].buckets.exponentialBuckets.scale: required",
        ),
        (
            {
                "instanceName": "i",
                "kind": "DISTRIBUTION",
                "buckets": {"linearBuckets": {"numFiniteBuckets": 2, "width": -1}},
            },
            "metrics[0].buckets.linearBuckets.width: must be greater than 0",
        ),
    ],
)
def test_each_mistake_is_named_with_its_field(metric: dict[str, Any], expected: str):
    assert expected in problems({"metrics": [metric]})


def test_duplicate_exported_names():
    counter = {"name": "requests_total", "instanceName": "a", "kind": "COUNTER"}
    assert problems({"metrics": [counter, {**counter, "instanceName": "b"}]}) == [
        "metrics[1].name: 'istio_requests_total' clashes with metrics[0] (both export istio_requests)"
    ]
    # A counter's `_total` is implied; a histogram's series have suffixes of their own.
    assert problems({"metrics": [counter, {**counter, "name": "requests"}]}) == [
        "metrics[1].name: 'istio_requests' clashes with metrics[0] (both export istio_requests)"
    ]
    histogram = {"name": "latency", "instanceName": "a", "kind": "DISTRIBUTION"}
    gauge = {"name": "latency_count", "instanceName": "a", "kind": "GAUGE"}
    assert problems({"metrics": [histogram, gauge]}) == [
        "metrics[1].name: 'istio_latency_count' clashes with metrics[0] (both export istio_latency_count)"
    ]
    # The same name in another namespace is another metric.
    assert problems({"metrics": [counter, {**counter, "namespace": "mine"}]}) == []


def test_top_level_shape():
    assert problems({}) == ["metrics: at least one metric is required"]
    assert problems({"metrics": {}}) == ["metrics: must be a list"]
    assert problems([]) == ["params: must be a map"]
    assert problems({"metrics": ["x"]}) == ["metrics[0]: must be a map"]
    assert problems({"metrics": [], "extra": 1}) == ["extra: unknown field"]
    assert (
        problems({"metrics": [], "metricsExpirationPolicy": {"metricsExpiryDuration": "10m"}}) == []
    )


def test_every_problem_of_a_config_is_reported_at_once():
    assert len(problems({"metrics": [{"kind": "X"}, {"instanceName": "i"}, {}]})) == 5
