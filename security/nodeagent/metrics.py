"""The node agent's metrics, read from its SDS server and secret cache at scrape time.

Names are those of Istio's node agent (1.1-1.4, security/pkg/nodeagent/sds): `total_pushes`,
`total_active_connections`, `total_push_errors`, plus per-identity certificate expiry and
CSR counts as Istio's agent later exported them (`cert_expiry_seconds`,
`num_outgoing_requests`, `num_failed_outgoing_requests` with `request_type="csr"`). Counters
are written under these names (pkg/monitoring). Nothing in the serving path is touched.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from security.nodeagent.cache import SecretCache
from security.nodeagent.server import SdsServer


class _AgentCollector(Collector):
    def __init__(self, cache: SecretCache, sds: SdsServer) -> None:
        self._cache = cache
        self._sds = sds

    def collect(self) -> Iterator[Metric]:
        status = self._sds.status()
        counters = status["counters"]
        yield CounterMetricFamily(
            "total_pushes", "Total number of SDS pushes (content changed).", counters["pushes"]
        )
        yield CounterMetricFamily(
            "total_push_errors",
            "Total number of SDS responses rejected (NACKed).",
            counters["nacks"],
        )
        yield GaugeMetricFamily(
            "total_active_connections",
            "Total number of active SDS connections.",
            len(status["streams"]),
        )
        issued = CounterMetricFamily(
            "num_outgoing_requests", "Number of requests sent to the CA.", labels=["request_type"]
        )
        failed = CounterMetricFamily(
            "num_failed_outgoing_requests",
            "Number of failed requests to the CA.",
            labels=["request_type"],
        )
        expiry = GaugeMetricFamily(
            "cert_expiry_seconds",
            "Seconds until the identity's workload certificate expires.",
            labels=["resource_name"],
        )
        secrets = self._cache.status()
        failures = sum(s.failures for s in secrets)
        issued.add_metric(["csr"], sum(s.issued for s in secrets) + failures)
        failed.add_metric(["csr"], failures)
        now = time.time()
        for secret in secrets:
            if secret.not_after:
                until = datetime.datetime.fromisoformat(secret.not_after).timestamp() - now
                expiry.add_metric([secret.identity], until)
        yield issued
        yield failed
        yield expiry


def agent_registry(cache: SecretCache, sds: SdsServer) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(_AgentCollector(cache, sds))
    return registry
