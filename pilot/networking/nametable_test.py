"""NDS: which hosts a sidecar's agent may answer, with which addresses."""

from __future__ import annotations

from typing import Any

from kubernetes.aio.client import models

from pilot.model.index import ServiceIndex
from pilot.model.push_context import build_push_context
from pilot.model.service import Port, Protocol, Resolution, Service
from pilot.networking import generator, nametable
from pilot.networking.testing import FakeProxy, push_of
from pilot.registry.kube import conversion
from pilot.registry.memory import MemoryRegistry
from pilot.registry.serviceentry import autoallocate
from pkg.config import loader

ENTRIES = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: external, namespace: default}
spec:
  hosts: [external.example.test]
  addresses: [10.96.1.10]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{number: 80, name: http, protocol: HTTP}]
  endpoints: [{address: 10.1.0.30}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: db, namespace: default}
spec:
  hosts: [db.example.test]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 5432, name: tcp, protocol: TCP}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: headless, namespace: default}
spec:
  hosts: [peers.example.test]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 7000, name: tcp, protocol: TCP}]
  workloadSelector: {labels: {app: peer}}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: peer-1, namespace: default}
spec: {address: 10.1.0.41, labels: {app: peer}}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: peer-2, namespace: default}
spec: {address: 10.1.0.42, labels: {app: peer}}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: wild, namespace: default}
spec:
  hosts: ["*.wild.test"]
  location: MESH_EXTERNAL
  resolution: NONE
  ports: [{number: 80, name: http, protocol: HTTP}]
"""

DNS = {"INTERCEPTION_MODE": "REDIRECT", "DNS_CAPTURE": "true"}
SIDECAR = FakeProxy("sidecar", "10.1.0.2", "default", {"app": "a"}, DNS)
AUTO = FakeProxy("sidecar", "10.1.0.3", "default", {"app": "b"},
                 {**DNS, "DNS_AUTO_ALLOCATE": "true"})  # fmt: skip


def _push() -> Any:
    configs: dict[str, list[Any]] = {}
    for resource in loader.load_text(ENTRIES, source="test"):
        configs.setdefault(resource.schema.kind, []).append(resource)
    return push_of(configs)


def _table(proxy: FakeProxy, push: Any) -> dict[str, tuple[list[str], str, str, str]]:
    (resource,) = list(generator.generate(proxy, generator.NAME_TABLE, [], push))
    name, table = resource
    assert name == ""
    return {h: (list(i.ips), i.registry, i.shortname, i.namespace) for h, i in table.table.items()}


def test_service_entry_hosts_get_their_addresses_and_dns_ones_none() -> None:
    table = _table(SIDECAR, _push())
    assert table["external.example.test"] == (["10.96.1.10"], "External", "", "")
    # Resolution DNS without addresses and no auto-allocation: forwarded upstream.
    assert "db.example.test" not in table
    # Resolution NONE without addresses: the endpoints' own, as for a headless Service.
    assert table["peers.example.test"][0] == ["10.1.0.41", "10.1.0.42"]
    assert not any(h.startswith("*") for h in table)


def test_auto_allocation_is_istios_range_and_only_for_proxies_that_ask() -> None:
    push = _push()
    table = _table(AUTO, push)
    v4, v6 = table["db.example.test"][0]
    assert v4.startswith("240.240.")
    assert v6.startswith("2001:2::f0f0:")
    assert "peers.example.test" in table
    assert table["peers.example.test"][0][0] == "10.1.0.41"
    assert push.services["db.example.test"].auto_allocated_address == v4
    # NONE (its original destination must be kept) and hosts with addresses get none.
    assert push.services["peers.example.test"].auto_allocated_address == ""
    assert push.services["external.example.test"].auto_allocated_address == ""
    # The proxy's TCP listener for the host is on that address, not 0.0.0.0.
    listeners = {m.name for _, m in generator.generate(AUTO, generator.LISTENER, [], push)}
    assert f"{v4}_5432" in listeners
    plain = {m.name for _, m in generator.generate(SIDECAR, generator.LISTENER, [], push)}
    assert f"{v4}_5432" not in plain
    assert "0.0.0.0_5432" in plain


def test_allocation_is_deterministic_and_collision_free() -> None:
    push = _push()
    services = list(push.services.values())
    assert autoallocate.allocate(services) == autoallocate.allocate(reversed(services))
    many = [_dns_service(f"h{i}.example.test") for i in range(2000)]
    table = autoallocate.allocate(many)
    addresses = [v4 for v4, _ in table.values()]
    assert len(table) == 2000
    assert len(set(addresses)) == 2000
    assert not any(a.endswith((".0", ".255")) for a in addresses)


def _dns_service(host: str) -> Service:
    return Service(host, "default", (Port("tcp", 1, Protocol.TCP),), resolution=Resolution.DNS_LB)


def test_kubernetes_services_carry_their_short_name_and_win_over_a_service_entry() -> None:
    registry = MemoryRegistry()
    service = models.V1Service(
        metadata=models.V1ObjectMeta(name="reviews", namespace="bookinfo"),
        spec=models.V1ServiceSpec(cluster_ip="10.96.0.9",
                                  ports=[models.V1ServicePort(name="http", port=9080)]),
    )  # fmt: skip
    registry.add_service(
        conversion.service(service, domain="cluster.local", trust_domain="cluster.local")
    )
    push = build_push_context({}, ServiceIndex.read(registry))
    table = _table(SIDECAR, push)
    assert table["reviews.bookinfo.svc.cluster.local"] == (
        ["10.96.0.9"], "Kubernetes", "reviews", "bookinfo")  # fmt: skip
    shared = nametable.build_name_table(
        SIDECAR, push, [*push.services.values(), _entry_for("reviews.bookinfo.svc.cluster.local")]
    )
    assert list(shared.table["reviews.bookinfo.svc.cluster.local"].ips) == ["10.96.0.9"]


def _entry_for(host: str) -> Service:
    return Service(host, "bookinfo", (Port("http", 9080, Protocol.HTTP),), address="10.96.9.9",
                   registry="External")  # fmt: skip


def test_gateways_get_no_name_table() -> None:
    router = FakeProxy("router", "10.1.0.9", "istio-system")
    assert list(generator.generate(router, generator.NAME_TABLE, [], _push())) == []
