"""A synthetic mesh of N services, as users would write its config, for generation benchmarks.

Per service `svc-<i>` in namespace `ns-<i % 10>`: a ServiceEntry (one HTTP port, STATIC,
selecting its workloads by label), three WorkloadEntries (versions v1..v3), a
DestinationRule with one subset per version, and for every third service a VirtualService
(header match to v2, else 80/20 between v1 and v3) bound to the mesh and to an ingress
Gateway. Workload addresses are loopback addresses (127.20.x.y) that nothing listens on:
the config is only generated, never dialled.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pkg.config import loader
from pkg.config.resource import Resource

GROUP = "networking.istio.io/v1alpha3"
NAMESPACES = 10
VERSIONS = ("v1", "v2", "v3")
SERVICE_PORT = 8080
GATEWAY = "istio-system/bench-gateway"
GATEWAY_LABELS = {"istio": "ingressgateway"}


ROUTER_ADDRESS = "127.19.0.1"


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    namespace: str
    address: str
    labels: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class ProxySpec:
    """A proxy of the synthetic mesh: what the generators read (ProxyView), and its node id."""

    type: str  # sidecar | router
    ip: str
    namespace: str
    labels: Mapping[str, str]
    pod: str
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # no SDS: plaintext
    locality: str = ""

    @property
    def domain(self) -> str:
        return f"{self.namespace}.svc.cluster.local"

    @property
    def node_id(self) -> str:
        return f"{self.type}~{self.ip}~{self.pod}.{self.namespace}~{self.domain}"


def sidecars(services: int, count: int) -> list[ProxySpec]:
    """`count` sidecars of workloads spread over the mesh (the first is svc-0's v1)."""
    every = workloads(services)
    step = max(len(every) // count, 1)
    return [
        ProxySpec("sidecar", w.address, w.namespace, dict(w.labels), w.name)
        for w in every[::step][:count]
    ]


def router() -> ProxySpec:
    return ProxySpec(
        "router", ROUTER_ADDRESS, "istio-system", GATEWAY_LABELS, "istio-ingressgateway"
    )


def namespace_of(index: int) -> str:
    return f"ns-{index % NAMESPACES}"


def hostname_of(index: int) -> str:
    return f"svc-{index}.{namespace_of(index)}.svc.cluster.local"


def workload_address(n: int) -> str:
    """The n-th workload's address (n < 62500): 127.20.0.1, 127.20.0.2, ..."""
    high, low = divmod(n, 250)
    return f"127.{20 + high // 250}.{high % 250}.{low + 1}"


def workloads(services: int) -> list[Workload]:
    return [
        Workload(
            name=f"svc-{i}-{version}",
            namespace=namespace_of(i),
            address=workload_address(i * len(VERSIONS) + v),
            labels={"app": f"svc-{i}", "version": version},
        )
        for i in range(services)
        for v, version in enumerate(VERSIONS)
    ]


def documents(services: int) -> list[dict[str, Any]]:
    """Every resource of the mesh as a Kubernetes-style dict, Gateway first."""
    docs: list[dict[str, Any]] = [_gateway()]
    by_service: dict[str, list[Workload]] = {}
    for workload in workloads(services):
        by_service.setdefault(workload.labels["app"], []).append(workload)
    for i in range(services):
        docs.append(_service_entry(i))
        docs += [_workload_entry(w) for w in by_service[f"svc-{i}"]]
        docs.append(_destination_rule(i))
        if i % 3 == 0:
            docs.append(_virtual_service(i))
    return docs


def resources(services: int) -> list[Resource]:
    return [
        loader.load_object(doc, source=f"synthetic[{n}]")
        for n, doc in enumerate(documents(services))
    ]


def by_kind(items: list[Resource]) -> dict[str, list[Resource]]:
    """Kind name -> resources, as `pilot.networking.testing.push_of` takes them."""
    configs: dict[str, list[Resource]] = {}
    for resource in items:
        configs.setdefault(resource.schema.kind, []).append(resource)
    return configs


def _meta(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace}


def _gateway() -> dict[str, Any]:
    namespace, name = GATEWAY.split("/")
    return {
        "apiVersion": GROUP,
        "kind": "Gateway",
        "metadata": _meta(name, namespace),
        "spec": {
            "selector": GATEWAY_LABELS,
            "servers": [
                {"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": ["*"]}
            ],
        },
    }


def _service_entry(i: int) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "ServiceEntry",
        "metadata": _meta(f"svc-{i}", namespace_of(i)),
        "spec": {
            "hosts": [hostname_of(i)],
            "location": "MESH_INTERNAL",
            "resolution": "STATIC",
            "ports": [{"number": SERVICE_PORT, "name": "http", "protocol": "HTTP"}],
            "workloadSelector": {"labels": {"app": f"svc-{i}"}},
        },
    }


def _workload_entry(workload: Workload) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "WorkloadEntry",
        "metadata": _meta(workload.name, workload.namespace),
        "spec": {
            "address": workload.address,
            "labels": {**workload.labels, "security.istio.io/tlsMode": "istio"},
            "serviceAccount": workload.labels["app"],
            "ports": {"http": SERVICE_PORT},
        },
    }


def _destination_rule(i: int) -> dict[str, Any]:
    return {
        "apiVersion": GROUP,
        "kind": "DestinationRule",
        "metadata": _meta(f"svc-{i}", namespace_of(i)),
        "spec": {
            "host": hostname_of(i),
            "subsets": [{"name": v, "labels": {"version": v}} for v in VERSIONS],
        },
    }


def _virtual_service(i: int) -> dict[str, Any]:
    host = hostname_of(i)
    return {
        "apiVersion": GROUP,
        "kind": "VirtualService",
        "metadata": _meta(f"svc-{i}", namespace_of(i)),
        "spec": {
            "hosts": [host],
            "gateways": ["mesh", GATEWAY],
            "http": [
                {
                    "match": [{"headers": {"end-user": {"exact": "jason"}}}],
                    "route": [{"destination": {"host": host, "subset": "v2"}}],
                },
                {
                    "route": [
                        {"destination": {"host": host, "subset": "v1"}, "weight": 80},
                        {"destination": {"host": host, "subset": "v3"}, "weight": 20},
                    ]
                },
            ],
        },
    }
