"""Pilot's xDS metrics under Istio's names (pilot/pkg/xds/monitoring.go), for `/metrics` on 15014.

The server and its streams report events here; nothing in the serving path reads back.
Type labels are Istio's lower-case short names (`cds`, `eds`, `lds`, `rds`, `sds`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pilot.xds.cache import ProxySnapshot
from pkg.xds import resources as res
from pkg.xds.cache import Snapshot

# Istio's buckets for push and convergence times (seconds).
_PUSH_TIME_BUCKETS = (0.01, 0.1, 1, 3, 5, 10, 20, 30)
_CONVERGENCE_BUCKETS = (0.1, 0.5, 1, 3, 5, 10, 20, 30)
_SIZE_BUCKETS = (1, 10_000, 1_000_000, 4_000_000, 10_000_000, 40_000_000)


def type_label(type_url: str) -> str:
    return res.short_name(type_url).lower()


class XdsMetrics:
    """One registry per server, so several Pilots in one test process keep apart; the
    engine's StreamEvents (pkg/xds/events.py) for Pilot's streams."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.connected = Gauge(
            "pilot_xds", "Number of endpoints connected to this pilot using XDS.", registry=r
        )
        self.pushes = Counter(
            "pilot_xds_pushes",
            "Pilot build and send errors for lds, rds, cds and eds.",
            ["type"],
            registry=r,
        )
        self.push_time = Histogram(
            "pilot_xds_push_time",
            "Total time in seconds Pilot takes to push lds, rds, cds and eds.",
            ["type"],
            buckets=_PUSH_TIME_BUCKETS,
            registry=r,
        )
        self.convergence = Histogram(
            "pilot_proxy_convergence_time",
            "Delay in seconds between config change and a proxy receiving all required configuration.",
            buckets=_CONVERGENCE_BUCKETS,
            registry=r,
        )
        self.config_size = Histogram(
            "pilot_xds_config_size_bytes",
            "Distribution of configuration sizes pushed to clients",
            ["type"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self.rejects = Counter(
            "pilot_total_xds_rejects",
            "Total number of XDS responses from pilot rejected by proxy.",
            ["type"],
            registry=r,
        )
        self.internal_errors = Counter(
            "pilot_total_xds_internal_errors",
            "Total number of internal XDS errors in pilot.",
            registry=r,
        )
        self.triggers = Counter(
            "pilot_push_triggers",
            "Total number of times a push was triggered, labeled by reason for the push.",
            ["type"],
            registry=r,
        )

    def watch_connections(self, count: Callable[[], int]) -> None:
        self.connected.set_function(lambda: float(count()))

    def on_push(self, reasons: list[str]) -> None:
        # A reason is "<kind>" or "<kind>: detail"; Istio labels by the kind alone.
        for reason in {r.split(":", 1)[0].strip() or "unknown" for r in reasons}:
            self.triggers.labels(type=reason).inc()

    def on_sent(self, type_url: str, seconds: float, size: int) -> None:
        label = type_label(type_url)
        self.pushes.labels(type=label).inc()
        self.push_time.labels(type=label).observe(seconds)
        self.config_size.labels(type=label).observe(size)

    def on_send_error(self, type_url: str) -> None:
        self.pushes.labels(type=f"{type_label(type_url)}_senderr").inc()

    def on_nack(self, type_url: str) -> None:
        self.rejects.labels(type=type_label(type_url)).inc()

    def on_generate_error(self, type_url: str) -> None:
        self.internal_errors.inc()

    def on_snapshot_sent(self, snapshot: Snapshot) -> None:
        # A push's snapshot (not a stream's first) knows when its change arrived.
        if isinstance(snapshot, ProxySnapshot) and snapshot.changed_at is not None:
            self.convergence.observe(asyncio.get_running_loop().time() - snapshot.changed_at)
