"""Metric families that outlive handlers, so counters stay continuous across config swaps.

Mixer replaces every handler when config changes: it builds the new one, starts sending it
reports, then closes the old one. If each handler owned its collectors, the swap would
either collide in the registry (two collectors exporting `istio_requests_total`) or restart
every counter at zero. Instead a process-wide `FamilyStore` per registry keeps one `Family`
per exported family name; handlers whose metric has the same shape (kind, label names, buckets)
share it, and a family leaves the registry when its last handler closes. Its values are kept,
so a handler built later with the same shape carries on from them (Prometheus sees a gap,
never a reset). A handler that redefines a name with another shape replaces the family, as
Istio's adapter does ("Metric redefined. Reloading adapter.").
"""

from __future__ import annotations

import bisect
import logging
import threading
import weakref
from collections.abc import Iterator, Sequence

import prometheus_client
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.utils import floatToGoString

from mixer.adapters.prometheus.params import Kind, MetricSpec


class Family:
    """One exported metric and its series: a prometheus_client custom collector.

    Updates come from the event loop, scrapes may come from another thread (the client's
    own HTTP server), so both take the lock; neither holds it for long.
    """

    def __init__(self, spec: MetricSpec) -> None:
        self.name = spec.family_name
        self.kind = spec.kind
        self.label_names = spec.label_names
        self.buckets = spec.buckets
        self.shape = spec.shape
        self.description = spec.description or spec.full_name
        self.users = 0  # handlers holding this family
        self.registered = False
        self._lock = threading.Lock()
        self._values: dict[tuple[str, ...], float] = {}  # COUNTER, GAUGE
        self._histograms: dict[tuple[str, ...], _Histogram] = {}  # DISTRIBUTION

    def record_all(self, samples: Sequence[tuple[tuple[str, ...], float]]) -> list[str]:
        """Add (COUNTER), set (GAUGE) or observe (DISTRIBUTION) each (labels, value) in order,
        under one lock: a Report's batch. Returns why the samples that could not be recorded
        were refused (a counter cannot decrease)."""
        refused: list[str] = []
        with self._lock:
            if self.kind is Kind.COUNTER:
                counts = self._values
                for labels, value in samples:
                    if value < 0:
                        refused.append(f"a counter cannot decrease (value {value})")
                    else:
                        counts[labels] = counts.get(labels, 0.0) + value
            elif self.kind is Kind.GAUGE:
                for labels, value in samples:
                    self._values[labels] = value
            else:
                histograms, buckets = self._histograms, self.buckets
                for labels, value in samples:
                    histogram = histograms.get(labels)
                    if histogram is None:
                        histogram = histograms[labels] = _Histogram(len(buckets))
                    histogram.observe(bisect.bisect_left(buckets, value), value)
        return refused

    def describe(self) -> list[Metric]:
        # Lets the registry learn our names without collecting the series.
        return [self._empty()]

    def collect(self) -> Iterator[Metric]:
        family = self._empty()
        with self._lock:
            if isinstance(family, HistogramMetricFamily):
                bounds = [floatToGoString(b) for b in self.buckets] + ["+Inf"]
                for labels, histogram in self._histograms.items():
                    family.add_metric(
                        list(labels),
                        buckets=list(zip(bounds, histogram.cumulative(), strict=True)),
                        sum_value=histogram.total,
                    )
            else:
                for labels, value in self._values.items():
                    family.add_metric(list(labels), value)
        yield family

    def _empty(self) -> CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily:
        labels = list(self.label_names)
        if self.kind is Kind.COUNTER:
            return CounterMetricFamily(self.name, self.description, labels=labels)
        if self.kind is Kind.GAUGE:
            return GaugeMetricFamily(self.name, self.description, labels=labels)
        return HistogramMetricFamily(self.name, self.description, labels=labels)


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self, finite_buckets: int) -> None:
        self.counts = [0] * (finite_buckets + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, bucket: int, value: float) -> None:
        self.counts[bucket] += 1
        self.total += value

    def cumulative(self) -> list[float]:
        running, out = 0, []
        for count in self.counts:
            running += count
            out.append(float(running))
        return out


class FamilyStore:
    """The families exported to one registry, kept across handler lifetimes."""

    def __init__(self, registry: prometheus_client.CollectorRegistry) -> None:
        # Weak, so that the store (a value of _STORES) does not keep its own key alive.
        self._registry = weakref.ref(registry)
        self._families: dict[str, Family] = {}
        self._lock = threading.Lock()

    def acquire(self, spec: MetricSpec, logger: logging.Logger) -> Family:
        """The family for `spec`, registered and counted as used by one more handler.

        Raises ValueError if the registry already has a foreign collector of that name.
        """
        with self._lock:
            family = self._families.get(spec.family_name)
            if family is not None and family.shape != spec.shape:
                logger.warning(
                    "prometheus: metric %s redefined (kind, labels or buckets changed); "
                    "its series restart",
                    spec.family_name,
                )
                # The old family stays with the handlers still holding it, unexported.
                self._unregister(family)
                family = None
            if family is None:
                family = Family(spec)
            if not family.registered:
                self._live_registry().register(family)
                family.registered = True
            self._families[spec.family_name] = family
            family.users += 1
            return family

    def release(self, family: Family) -> None:
        """One handler is done with `family`; unexport it when no handler uses it."""
        with self._lock:
            family.users -= 1
            if family.users <= 0:
                family.users = 0
                self._unregister(family)

    def get(self, family_name: str) -> Family | None:
        with self._lock:
            return self._families.get(family_name)

    def _unregister(self, family: Family) -> None:
        if family.registered:
            self._live_registry().unregister(family)
            family.registered = False

    def _live_registry(self) -> prometheus_client.CollectorRegistry:
        registry = self._registry()
        if registry is None:  # only reachable through a store kept past its registry
            raise RuntimeError("the registry of this family store is gone")
        return registry


_STORES: weakref.WeakKeyDictionary[prometheus_client.CollectorRegistry, FamilyStore] = (
    weakref.WeakKeyDictionary()
)
_STORES_LOCK = threading.Lock()


def store_for(registry: prometheus_client.CollectorRegistry) -> FamilyStore:
    """The process-wide store of `registry` (a registry dropped by its owner takes it along)."""
    with _STORES_LOCK:
        store = _STORES.get(registry)
        if store is None:
            store = _STORES[registry] = FamilyStore(registry)
        return store
