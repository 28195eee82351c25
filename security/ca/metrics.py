"""Citadel's server counters, on the CA's HTTP port at /metrics (Prometheus text format).

Each CA instance has its own registry, so several CAs in one test process do not collide.
"""

from __future__ import annotations

import datetime

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest


class CaMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.csr_count = Counter(
            "citadel_server_csr", "CreateCertificate requests received.", registry=self.registry
        )
        self.refusals = Counter(
            "citadel_server_refusals",
            "CreateCertificate requests refused, by gRPC status code.",
            ["code"],
            registry=self.registry,
        )
        self.issued = Counter(
            "citadel_server_success_cert_issuance",
            "Workload certificates issued.",
            registry=self.registry,
        )
        self.root_expiry = Gauge(
            "citadel_server_root_cert_expiry_timestamp",
            "Unix time at which the root certificate expires.",
            registry=self.registry,
        )

    def refused(self, code: grpc.StatusCode) -> None:
        self.refusals.labels(code=code.name).inc()

    def set_root_expiry(self, when: datetime.datetime) -> None:
        self.root_expiry.set(when.timestamp())

    def render(self) -> bytes:
        return generate_latest(self.registry)
