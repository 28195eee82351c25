"""Citadel's server metrics under Istio's names, on the CA's HTTP port at /metrics.

Istio's CA exports `citadel_server_csr_count`, `citadel_server_success_cert_issuance_count`,
`citadel_server_authentication_failure_count`, `citadel_server_csr_parsing_err_count`,
`citadel_server_csr_sign_err_count` and `citadel_server_root_cert_expiry_timestamp`; counters
are written under those names (pkg/monitoring), as Istio's exporter writes them. Refusals are
also counted by gRPC code in `citadel_server_refusals`, which Istio does not have.
Each CA instance has its own registry, so several CAs in one test process do not collide.
"""

from __future__ import annotations

import datetime

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge

from pkg.monitoring import render


class CaMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.csr_count = Counter(
            "citadel_server_csr_count", "The number of CSRs received by Citadel server.", registry=r
        )
        self.issued = Counter(
            "citadel_server_success_cert_issuance_count",
            "The number of certificates issuances that have succeeded.",
            registry=r,
        )
        self.authentication_failures = Counter(
            "citadel_server_authentication_failure_count",
            "The number of authentication failures.",
            registry=r,
        )
        self.parsing_errors = Counter(
            "citadel_server_csr_parsing_err_count",
            "The number of errors occurred when parsing the CSR.",
            registry=r,
        )
        self.sign_errors = Counter(
            "citadel_server_csr_sign_err_count",
            "The number of errors occurred when signing the CSR.",
            registry=r,
        )
        self.refusals = Counter(
            "citadel_server_refusals",
            "CreateCertificate requests refused, by gRPC status code.",
            ["code"],
            registry=r,
        )
        self.root_expiry = Gauge(
            "citadel_server_root_cert_expiry_timestamp",
            "The unix timestamp, in seconds, when Citadel root cert will expire.",
            registry=r,
        )

    def refused(self, code: grpc.StatusCode) -> None:
        self.refusals.labels(code=code.name).inc()
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            self.authentication_failures.inc()
        elif code is grpc.StatusCode.INVALID_ARGUMENT:
            self.parsing_errors.inc()
        else:
            self.sign_errors.inc()

    def set_root_expiry(self, when: datetime.datetime) -> None:
        self.root_expiry.set(when.timestamp())

    def render(self) -> bytes:
        return render(self.registry)
