"""The service model every registry feeds and every generator reads.

Istio's `pilot/pkg/model/service.go` in dataclasses: a Service is a hostname with ports;
an Endpoint is one workload address serving one of those ports. Registries build these
from their platform; nothing here knows where they came from.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping

DOMAIN_SUFFIX = "cluster.local"

# The label a workload with a sidecar carries (Istio's own convention): mesh traffic to it
# goes through the sidecar's inbound listener rather than straight to the app, and its
# value says whether that sidecar holds Istio certificates (`istio`) or not (`disabled`).
TLS_MODE_LABEL = "security.istio.io/tlsMode"


class Protocol(enum.Enum):
    HTTP = "HTTP"
    HTTP2 = "HTTP2"
    GRPC = "GRPC"
    GRPC_WEB = "GRPC-Web"
    HTTP_PROXY = "HTTP_PROXY"
    HTTPS = "HTTPS"
    TLS = "TLS"
    TCP = "TCP"
    MONGO = "Mongo"
    REDIS = "Redis"
    MYSQL = "MySQL"
    UDP = "UDP"
    # Istio's `UnsupportedProtocol`: a port that declares no protocol Istio knows. Istio
    # sniffs it ("auto"): a sidecar tells HTTP from anything else on each connection.
    UNSUPPORTED = "UnsupportedProtocol"

    @classmethod
    def parse(cls, text: str) -> Protocol:
        """Case-insensitive, as Istio's ParseProtocol; anything unknown is plain TCP here (the
        registries that sniff, Kubernetes', say UNSUPPORTED themselves)."""
        for member in cls:
            if member is not cls.UNSUPPORTED and member.value.lower() == text.lower():
                return member
        return cls.TCP

    @property
    def is_http(self) -> bool:
        return self in (
            Protocol.HTTP,
            Protocol.HTTP2,
            Protocol.GRPC,
            Protocol.GRPC_WEB,
            Protocol.HTTP_PROXY,
        )

    @property
    def is_sniffed(self) -> bool:
        """Whether a captured sidecar detects the protocol per connection (http_inspector)."""
        return self is Protocol.UNSUPPORTED

    @property
    def is_http2(self) -> bool:
        return self in (Protocol.HTTP2, Protocol.GRPC, Protocol.GRPC_WEB)


class Resolution(enum.Enum):
    CLIENT_SIDE_LB = "ClientSideLB"  # the proxy picks an endpoint it learned over EDS
    DNS_LB = "DNSLB"  # Envoy resolves the hostname itself, every address it gets (STRICT_DNS)
    DNS_ROUND_ROBIN_LB = "DNSRoundRobinLB"  # Envoy resolves it, one address at a time (LOGICAL_DNS)
    PASSTHROUGH = "Passthrough"  # forward to wherever the caller was going


@dataclasses.dataclass(frozen=True)
class Port:
    name: str
    number: int
    protocol: Protocol


@dataclasses.dataclass(frozen=True)
class Service:
    hostname: str
    namespace: str
    ports: tuple[Port, ...]
    address: str = "0.0.0.0"
    resolution: Resolution = Resolution.CLIENT_SIDE_LB
    mesh_external: bool = False
    service_accounts: tuple[str, ...] = ()
    # Which registry made it (Istio's provider ID: "Kubernetes", "External" for ServiceEntries);
    # the agent's DNS proxy answers a Kubernetes Service's short names too.
    registry: str = ""
    # A ServiceEntry without addresses gets one from Istio's range 240.240.0.0/16 (and
    # 2001:2::/48): used only by proxies that asked for it (DNS_CAPTURE and DNS_AUTO_ALLOCATE),
    # whose DNS proxy answers the host with it and whose listeners are on it.
    auto_allocated_address: str = ""
    auto_allocated_address_v6: str = ""

    def port(self, number: int) -> Port | None:
        return next((p for p in self.ports if p.number == number), None)

    def port_named(self, name: str) -> Port | None:
        return next((p for p in self.ports if p.name == name), None)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One workload address serving one service port (Istio's ServiceInstance)."""

    hostname: str
    service_port: Port
    address: str
    port: int  # the workload's own port, which may differ from the service port
    labels: Mapping[str, str]
    namespace: str
    service_account: str = ""
    workload_name: str = ""
    locality: str = ""
    weight: int = 0
    # Its pod has Istio's iptables capture (an istio-init container): callers use the app's
    # own port, which the capture hands to the sidecar's virtualInbound. A sidecar without
    # capture (the loopback platform's) is reached on its inbound listener's port instead.
    captured: bool = False

    @property
    def has_sidecar(self) -> bool:
        """Fronted by a sidecar (label `istio`: with Istio certificates; `disabled`: without)."""
        return TLS_MODE_LABEL in self.labels

    @property
    def speaks_istio_mtls(self) -> bool:
        return self.labels.get(TLS_MODE_LABEL) == "istio"


def labels_match(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    """True when every key/value of `selector` is in `labels` (an empty selector matches all)."""
    return all(labels.get(key) == value for key, value in selector.items())


def spiffe_identity(namespace: str, service_account: str, trust_domain: str = DOMAIN_SUFFIX) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/sa/{service_account}"
