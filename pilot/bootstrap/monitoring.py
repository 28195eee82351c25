"""Gauges of the last PushContext Pilot built, under Istio's names, read at scrape time."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from pilot.model.push_context import PushContext


class _PushContextCollector(Collector):
    def __init__(self, current: Callable[[], PushContext | None]) -> None:
        self._current = current

    def collect(self) -> Iterator[GaugeMetricFamily]:
        push = self._current()
        services = len(push.services) if push is not None else 0
        virtual_services = len(push.virtual_services) if push is not None else 0
        yield GaugeMetricFamily("pilot_services", "Total services known to pilot.", services)
        yield GaugeMetricFamily(
            "pilot_virt_services", "Total virtual services known to pilot.", virtual_services
        )


def register_push_context_metrics(
    registry: CollectorRegistry, current: Callable[[], PushContext | None]
) -> None:
    """`current` returns the PushContext in use (None before the first one is built)."""
    registry.register(_PushContextCollector(current))
