"""Counters keep Istio's names; the output parses as Prometheus text."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.parser import text_string_to_metric_families

from pkg.monitoring import render


def test_counters_are_written_under_their_own_names_without_created_series():
    registry = CollectorRegistry()
    pushes = Counter("pilot_xds_pushes", "Pushes by type.", ["type"], registry=registry)
    pushes.labels(type="cds").inc(3)
    Gauge("pilot_xds", "Connected proxies.", registry=registry).set(7)
    text = render(registry).decode()
    assert "# TYPE pilot_xds_pushes counter\n" in text
    assert 'pilot_xds_pushes{type="cds"} 3.0\n' in text
    assert "pilot_xds 7.0\n" in text
    assert "_total" not in text
    assert "_created" not in text


def test_histograms_and_escaped_labels_parse_back():
    registry = CollectorRegistry()
    histogram = Histogram(
        "pilot_proxy_convergence_time", "Seconds.", buckets=(0.1, 1.0), registry=registry
    )
    histogram.observe(0.05)
    histogram.observe(0.5)
    Counter("odd", "Odd labels.", ["v"], registry=registry).labels(v='a"b\\c\nd').inc()
    families = {f.name: f for f in text_string_to_metric_families(render(registry).decode())}
    buckets = {
        s.labels["le"]: s.value
        for s in families["pilot_proxy_convergence_time"].samples
        if s.name.endswith("_bucket")
    }
    assert buckets == {"0.1": 1.0, "1.0": 2.0, "+Inf": 2.0}
    (odd,) = [s for s in families["odd"].samples]
    assert odd.labels == {"v": 'a"b\\c\nd'}
    assert odd.value == 1.0
