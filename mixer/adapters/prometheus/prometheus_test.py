"""The prometheus handler end to end: instances in, the scraped text format out."""

from __future__ import annotations

import asyncio
import datetime
import gc
import logging
from collections.abc import Mapping
from typing import Any

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mixer.adapter import testing
from mixer.adapter.api import Env, MetricHandler
from mixer.adapters.prometheus import families
from mixer.adapters.prometheus.prometheus import (
    INFO,
    MetricError,
    PrometheusHandler,
    parse_reference,
)
from mixer.template.templates import Metric

LOG = logging.getLogger("prometheus_test")
LABELS = ["source_app", "response_code", "mtls"]
REQUESTS = {
    "name": "requests_total",
    "instanceName": "requestcount.instance.istio-system",
    "kind": "COUNTER",
    "labelNames": LABELS,
}
DURATION = {
    "name": "request_duration_seconds",
    "instanceName": "requestduration.instance.istio-system",
    "kind": "DISTRIBUTION",
    "labelNames": LABELS,
    "buckets": {
        "explicitBuckets": {"bounds": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]}
    },
}
DIMS = {"source_app": "productpage", "response_code": 200, "mtls": True}
SERIES = {"source_app": "productpage", "response_code": "200", "mtls": "true"}


def env(registry: prometheus_client.CollectorRegistry) -> Env:
    return Env(logger=LOG, metrics=registry)


async def build(
    registry: prometheus_client.CollectorRegistry,
    *metrics: Mapping[str, Any],
    instances: Mapping[str, list[str]] | None = None,
) -> PrometheusHandler:
    handler = await testing.build_handler(
        INFO, {"metrics": list(metrics)}, instances, env=env(registry)
    )
    assert isinstance(handler, PrometheusHandler)
    return handler


def metric(name: str, value: Any, **dims: Any) -> Metric:
    return Metric(name=name, value=value, dimensions=dims or DIMS)


def scrape(registry: prometheus_client.CollectorRegistry) -> dict[str, dict[tuple, float]]:
    """{family name: {(sample name, sorted labels): value}} as Prometheus would read it."""
    text = prometheus_client.generate_latest(registry).decode()
    out: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(text):
        samples = out.setdefault(family.name, {})
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def buckets(samples: dict[tuple, float], name: str) -> dict[str, float]:
    """{le: cumulative count} of the bucket samples called `name`, in exposition order."""
    return {dict(labels)["le"]: v for (sample, labels), v in samples.items() if sample == name}


def key(sample: str, **labels: str) -> tuple:
    return (sample, tuple(sorted(labels.items())))


def test_info_names_the_adapter_and_its_template():
    assert INFO.name == "prometheus"
    assert INFO.templates == ("metric",)
    handler: MetricHandler = asyncio.run(build(prometheus_client.CollectorRegistry(), REQUESTS))
    asyncio.run(handler.close())


def test_counter_adds_values_with_stringified_labels():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        handler = await build(registry, REQUESTS)
        name = "requestcount.instance.istio-system"
        await handler.handle_metric([metric(name, 1), metric(name, 1)])
        await handler.handle_metric([metric(name, 3)])
        await handler.handle_metric(
            [metric(name, 1, source_app="reviews", response_code=503, mtls=False)]
        )
        families_ = scrape(registry)
        assert families_["istio_requests"] == {
            key("istio_requests_total", **SERIES): 5.0,
            key(
                "istio_requests_total", source_app="reviews", response_code="503", mtls="false"
            ): 1.0,
        }
        await handler.close()

    asyncio.run(main())


def test_gauge_keeps_the_last_value():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        gauge = {"name": "queue", "instanceName": "depth", "kind": "GAUGE", "labelNames": ["q"]}
        handler = await build(registry, gauge)
        await handler.handle_metric([metric("depth", 7, q="a"), metric("depth", "2.5", q="a")])
        assert scrape(registry)["istio_queue"] == {key("istio_queue", q="a"): 2.5}
        await handler.close()

    asyncio.run(main())


def test_distribution_observes_durations_in_seconds_into_explicit_buckets():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        handler = await build(registry, DURATION)
        name = "requestduration.instance.istio-system"
        await handler.handle_metric(
            [
                metric(name, datetime.timedelta(milliseconds=30)),
                metric(name, datetime.timedelta(milliseconds=5)),  # on a bound: le is inclusive
                metric(name, 12.0),  # past the last bound
            ]
        )
        samples = scrape(registry)["istio_request_duration_seconds"]
        bucket = "istio_request_duration_seconds_bucket"
        counts = {
            le: samples[key(bucket, le=le, **SERIES)]
            for le in ("0.005", "0.01", "0.025", "0.05", "10.0", "+Inf")
        }
        assert counts == {"0.005": 1, "0.01": 1, "0.025": 1, "0.05": 2, "10.0": 2, "+Inf": 3}
        assert samples[key("istio_request_duration_seconds_count", **SERIES)] == 3
        assert samples[key("istio_request_duration_seconds_sum", **SERIES)] == pytest.approx(12.035)
        await handler.close()

    asyncio.run(main())


def test_exponential_and_linear_buckets_have_n_plus_one_bounds():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        sizes = {
            "name": "request_bytes",
            "instanceName": "requestsize",
            "kind": "DISTRIBUTION",
            "buckets": {
                "exponentialBuckets": {"numFiniteBuckets": 8.0, "scale": 1, "growthFactor": 10}
            },
        }
        linear = {
            "name": "ages",
            "instanceName": "age",
            "kind": "DISTRIBUTION",
            "buckets": {"linearBuckets": {"numFiniteBuckets": 3, "width": 5, "offset": 10}},
        }
        handler = await build(registry, sizes, linear)
        await handler.handle_metric([metric("requestsize", 2048, x="1"), metric("age", 16, x="1")])
        scraped = scrape(registry)
        exp = buckets(scraped["istio_request_bytes"], "istio_request_bytes_bucket")
        assert list(exp) == [
            "1.0",
            "10.0",
            "100.0",
            "1000.0",
            "10000.0",
            "100000.0",
            "1e+06",
            "1e+07",
            "1e+08",
            "+Inf",
        ]
        assert exp["1000.0"] == 0
        assert exp["10000.0"] == 1
        lin = buckets(scraped["istio_ages"], "istio_ages_bucket")
        assert lin == {"10.0": 0, "15.0": 0, "20.0": 1, "25.0": 1, "+Inf": 1}
        await handler.close()

    asyncio.run(main())


def test_bad_instances_fail_alone_and_are_reported_together():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        handler = await build(registry, REQUESTS)
        name = "requestcount.instance.istio-system"
        with pytest.raises(MetricError) as raised:
            await handler.handle_metric(
                [
                    metric(name, 1, source_app="a", response_code=200),  # no `mtls` dimension
                    metric("othercount.instance.istio-system", 1),  # no metric takes it
                    metric(name, -1),  # counters never go down
                    metric(name, "many"),  # not a number
                    metric(name, 1),  # fine
                ]
            )
        message = str(raised.value)
        assert "no dimension 'mtls'" in message
        assert "othercount.instance.istio-system: no metric" in message
        assert "cannot decrease" in message
        assert "'many' is not a number" in message
        assert scrape(registry)["istio_requests"] == {key("istio_requests_total", **SERIES): 1.0}
        await handler.close()

    asyncio.run(main())


def test_an_instance_handed_over_again_counts_again():
    """Mixer hands consecutive entries the very same instance when their deltas left it
    alone; each is still one request (the handler reuses its sample, not its count)."""

    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        handler = await build(registry, REQUESTS)
        name = "requestcount.instance.istio-system"
        same = metric(name, 1, **SERIES)
        other = metric(name, 2, **SERIES)
        await handler.handle_metric([same, same, other, same])
        await handler.handle_metric([same])
        assert scrape(registry)["istio_requests"] == {key("istio_requests_total", **SERIES): 6.0}
        bad = metric(name, "many", **SERIES)
        with pytest.raises(MetricError) as raised:
            await handler.handle_metric([bad, bad])
        assert str(raised.value).count("'many' is not a number") == 2
        await handler.close()

    asyncio.run(main())


def test_extra_dimensions_are_ignored():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        handler = await build(registry, REQUESTS)
        await handler.handle_metric(
            [metric("requestcount.instance.istio-system", 1, **DIMS, reporter="source")]
        )
        assert scrape(registry)["istio_requests"] == {key("istio_requests_total", **SERIES): 1.0}
        await handler.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("configured", "sent", "matches"),
    [
        ("requestcount.instance.istio-system", "requestcount.instance.istio-system", True),
        ("requestcount.instance.istio-system", "requestcount.istio-system", True),
        ("requestcount.instance.istio-system", "requestcount", True),
        ("requestcount", "requestcount.instance.istio-system", True),
        ("requestcount.metric", "requestcount.metric.default", True),
        ("requestcount.instance.istio-system", "requestcount.instance.default", False),
        ("requestcount.default", "requestcount.instance.istio-system", False),
        ("requestcount", "requestsize", False),
    ],
)
def test_instance_names_match_in_any_spelling(configured: str, sent: str, matches: bool):
    async def main() -> None:
        handler = await build(
            prometheus_client.CollectorRegistry(), {**REQUESTS, "instanceName": configured}
        )
        assert handler.takes(sent) is matches
        await handler.close()

    asyncio.run(main())


def test_parse_reference():
    assert parse_reference("a") == ("a", None)
    assert parse_reference("a.instance") == ("a", None)
    assert parse_reference("a.ns") == ("a", "ns")
    assert parse_reference("a.instance.ns") == ("a", "ns")


def test_a_config_swap_keeps_counters_continuous():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        name = "requestcount.instance.istio-system"
        old = await build(registry, REQUESTS, DURATION)
        await old.handle_metric([metric(name, 3)])
        # The runtime builds the new handler while the old one still serves.
        new = await build(registry, REQUESTS, DURATION)
        await old.close()
        await new.handle_metric([metric(name, 2)])
        assert scrape(registry)["istio_requests"] == {key("istio_requests_total", **SERIES): 5.0}
        # Closing first and building after works too: the values wait for the next handler.
        await new.close()
        assert "istio_requests" not in scrape(registry)
        newer = await build(registry, REQUESTS, DURATION)
        await newer.handle_metric([metric(name, 1)])
        assert scrape(registry)["istio_requests"] == {key("istio_requests_total", **SERIES): 6.0}
        await newer.close()

    asyncio.run(main())


def test_two_handlers_share_a_metric_and_keep_their_own():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        first = await build(registry, REQUESTS)
        second = await build(registry, REQUESTS, DURATION)
        await first.handle_metric([metric("requestcount", 1)])
        await second.handle_metric([metric("requestcount", 1)])
        scraped = scrape(registry)
        assert scraped["istio_requests"] == {key("istio_requests_total", **SERIES): 2.0}
        assert "istio_request_duration_seconds" in scraped
        await second.close()
        scraped = scrape(registry)
        assert "istio_requests" in scraped
        assert "istio_request_duration_seconds" not in scraped
        await first.close()
        assert scrape(registry) == {}

    asyncio.run(main())


def test_a_counter_named_with_or_without_total_is_one_family():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        first = await build(registry, REQUESTS)
        second = await build(registry, {**REQUESTS, "name": "requests"})
        await first.handle_metric([metric("requestcount", 1)])
        await second.handle_metric([metric("requestcount", 1)])
        assert scrape(registry)["istio_requests"] == {key("istio_requests_total", **SERIES): 2.0}
        await first.close()
        await second.close()

    asyncio.run(main())


def test_a_redefined_metric_replaces_the_old_family():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        old = await build(registry, REQUESTS)
        await old.handle_metric([metric("requestcount", 4)])
        new = await build(registry, {**REQUESTS, "labelNames": ["source_app"]})
        await old.handle_metric([metric("requestcount", 1)])  # goes nowhere visible
        await new.handle_metric([metric("requestcount", 1)])
        await old.close()
        assert scrape(registry)["istio_requests"] == {
            key("istio_requests_total", source_app="productpage"): 1.0
        }
        await new.close()

    asyncio.run(main())


def test_a_name_held_by_a_foreign_collector_fails_the_build_cleanly():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        prometheus_client.Gauge("istio_request_duration_seconds_count", "mine", registry=registry)
        builder = INFO.new_builder({"metrics": [REQUESTS, DURATION]}, {})
        with pytest.raises(ValueError, match="Duplicated timeseries"):
            await builder.build(env(registry))
        # The metric acquired before the clash was handed back.
        assert "istio_requests" not in scrape(registry)
        handler = await build(registry, REQUESTS)
        await handler.close()

    asyncio.run(main())


def test_build_refuses_invalid_params_and_warns_of_unfed_instances(caplog):
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        builder = INFO.new_builder({"metrics": [{"name": "x", "kind": "COUNTER"}]}, {})
        assert [e.field for e in builder.validate()] == ["metrics[0].instanceName"]
        with pytest.raises(ValueError, match="instanceName"):
            await builder.build(env(registry))
        with caplog.at_level(logging.WARNING, logger=LOG.name):
            handler = await build(
                registry, REQUESTS, instances={"metric": ["requestcount", "requestsize"]}
            )
        assert "instance requestsize is sent to this handler" in caplog.text
        assert "requestcount is sent" not in caplog.text
        await handler.close()
        await handler.close()  # closing twice hands nothing back twice

    asyncio.run(main())


def test_a_dropped_registry_takes_its_store_along():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        handler = await build(registry, REQUESTS)
        await handler.close()

    gc.collect()
    before = len(families._STORES)
    asyncio.run(main())
    gc.collect()
    assert len(families._STORES) == before


def test_one_instance_may_feed_several_metrics():
    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        sizes = {
            "name": "sent_total",
            "instanceName": "responsesize.istio-system",
            "kind": "COUNTER",
            "labelNames": ["source_app"],
        }
        histogram = {**sizes, "name": "sizes", "kind": "DISTRIBUTION"}
        handler = await build(registry, sizes, histogram)
        await handler.handle_metric([metric("responsesize.istio-system", 300)])
        scraped = scrape(registry)
        assert scraped["istio_sent"] == {key("istio_sent_total", source_app="productpage"): 300}
        assert scraped["istio_sizes"][key("istio_sizes_sum", source_app="productpage")] == 300
        await handler.close()

    asyncio.run(main())


def test_labels_remembered_for_one_dimensions_dict_follow_a_new_dict():
    """Mixer hands consecutive entries of a Report the same dimensions dict while their
    labels stay the same; another dict, even one made mid-batch, gets its own labels."""

    async def main() -> None:
        registry = prometheus_client.CollectorRegistry()
        handler = await build(registry, REQUESTS, DURATION)
        count, duration = (
            "requestcount.instance.istio-system",
            "requestduration.instance.istio-system",
        )
        shared = dict(DIMS)
        other = {**DIMS, "response_code": 503}
        await handler.handle_metric(
            [
                Metric(name=count, value=1, dimensions=shared),
                Metric(name=duration, value=datetime.timedelta(milliseconds=3), dimensions=shared),
                Metric(name=count, value=1, dimensions=shared),
                Metric(name=count, value=1, dimensions=other),
                Metric(name=count, value=1, dimensions=dict(DIMS)),
            ]
        )
        with pytest.raises(MetricError, match="no dimension 'mtls'"):
            await handler.handle_metric(
                [Metric(name=count, value=1, dimensions={"source_app": "a", "response_code": 1})]
            )
        samples = scrape(registry)
        assert samples["istio_requests"] == {
            key("istio_requests_total", **SERIES): 3.0,
            key("istio_requests_total", **{**SERIES, "response_code": "503"}): 1.0,
        }
        assert (
            samples["istio_request_duration_seconds"][
                key("istio_request_duration_seconds_count", **SERIES)
            ]
            == 1.0
        )
        await handler.close()

    asyncio.run(main())
