"""A captured sidecar's outbound side: virtualOutbound, the listener per destination, the
per-port route tables and the outbound traffic policy."""

from __future__ import annotations

import dataclasses
from typing import Any

from kubernetes.aio.client import models

from pilot.model.index import ServiceIndex
from pilot.model.push_context import MeshOptions, build_push_context
from pilot.networking import generator
from pilot.networking.testing import FakeProxy, generate_all, push_of
from pilot.registry.kube import conversion
from pilot.registry.memory import MemoryRegistry
from pkg.config import loader
from pkg.config.mesh import parse_mesh_config

MESH = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: reviews, namespace: default}
spec:
  hosts: [reviews.default.svc.cluster.local]
  addresses: [10.96.0.10]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 10.1.0.10}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: tcp-echo, namespace: default}
spec:
  hosts: [tcp-echo.default.svc.cluster.local]
  addresses: [10.96.0.20]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9000, name: tcp, protocol: TCP}]
  endpoints: [{address: 10.1.0.20}]
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: app, namespace: default}
spec:
  hosts: [app.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 8080, name: http, protocol: HTTP}]
  workloadSelector: {labels: {app: app}}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: app, namespace: default}
spec: {address: 10.1.0.2, labels: {app: app}}
"""

CAPTURED = FakeProxy("sidecar", "10.1.0.2", "default", {"app": "app"},
                     {"INTERCEPTION_MODE": "REDIRECT"})  # fmt: skip


def push(*extra: str, mesh: str = ""):
    resources = loader.load_text(MESH + "".join(f"---\n{e}" for e in extra), source="test")
    configs: dict[str, list[Any]] = {}
    for resource in resources:
        configs.setdefault(resource.schema.kind, []).append(resource)
    options = MeshOptions(mesh_config=parse_mesh_config(mesh)) if mesh else None
    return push_of(configs, options)


def by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def tcp_target(chain: dict[str, Any]) -> Any:
    config = chain["filters"][-1]["typed_config"]
    return config.get("cluster") or [
        (c["name"], c["weight"]) for c in config["weighted_clusters"]["clusters"]
    ]


def test_a_proxy_without_interception_keeps_the_http_proxy_listener():
    for metadata in ({}, {"INTERCEPTION_MODE": "NONE"}):
        proxy = dataclasses.replace(CAPTURED, metadata=metadata)
        listeners = by_name(generate_all(proxy, push())["LDS"])
        assert sorted(listeners) == ["virtualInbound", "virtualOutbound"]
        address = listeners["virtualOutbound"]["address"]["socket_address"]
        assert address == {"address": "10.1.0.2", "port_value": 15001}
        assert "use_original_dst" not in listeners["virtualOutbound"]


def test_virtual_outbound_hands_connections_to_the_listener_of_their_destination():
    listeners = by_name(generate_all(CAPTURED, push())["LDS"])
    assert sorted(listeners) == [
        "0.0.0.0_8080",
        "0.0.0.0_9080",
        "10.96.0.20_9000",
        "virtualInbound",
        "virtualOutbound",
    ]
    outbound = listeners["virtualOutbound"]
    assert outbound["address"]["socket_address"] == {"address": "0.0.0.0", "port_value": 15001}
    assert outbound["use_original_dst"] is True
    assert outbound.get("bind_to_port", True) is True
    chains = by_name(outbound["filter_chains"])
    assert chains["virtualOutbound-blackhole"]["filter_chain_match"] == {"destination_port": 15001}
    assert tcp_target(chains["virtualOutbound-catchall-tcp"]) == "PassthroughCluster"

    http = listeners["0.0.0.0_9080"]
    assert http["bind_to_port"] is False
    manager = http["filter_chains"][0]["filters"][0]["typed_config"]
    assert manager["rds"]["route_config_name"] == "9080"

    tcp = listeners["10.96.0.20_9000"]
    assert tcp["bind_to_port"] is False
    assert tcp["address"]["socket_address"] == {"address": "10.96.0.20", "port_value": 9000}
    assert (
        tcp_target(tcp["filter_chains"][0]) == "outbound|9000||tcp-echo.default.svc.cluster.local"
    )


def test_a_ports_route_table_names_services_as_istio_does_and_passes_the_rest_on():
    tables = by_name(generate_all(CAPTURED, push())["RDS"])
    assert sorted(tables) == ["8080", "9080"]
    hosts = tables["9080"]["virtual_hosts"]
    reviews, catch_all = hosts
    assert reviews["name"] == "reviews.default.svc.cluster.local:9080"
    for domain in ("reviews", "reviews:9080", "reviews.default", "reviews.default.svc",
                   "reviews.default.svc.cluster.local:9080", "10.96.0.10", "10.96.0.10:9080"):  # fmt: skip
        assert domain in reviews["domains"]
    assert catch_all["name"] == "allow_any"
    assert catch_all["domains"] == ["*"]
    assert catch_all["routes"][0]["route"]["cluster"] == "PassthroughCluster"


def test_registry_only_blackholes_unknown_destinations_and_unknown_hosts():
    config = generate_all(CAPTURED, push(mesh="outboundTrafficPolicy: {mode: REGISTRY_ONLY}"))
    outbound = by_name(by_name(config["LDS"])["virtualOutbound"]["filter_chains"])
    assert tcp_target(outbound["virtualOutbound-catchall-tcp"]) == "BlackHoleCluster"
    catch_all = by_name(config["RDS"])["9080"]["virtual_hosts"][-1]
    assert catch_all["name"] == "block_all"
    assert catch_all["routes"][0]["direct_response"] == {"status": 502}
    # The registered hosts still route.
    assert by_name(config["RDS"])["9080"]["virtual_hosts"][0]["name"].startswith("reviews.")


def test_a_workloads_sidecar_overrides_the_meshs_outbound_policy():
    sidecar = """
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: app, namespace: default}
spec:
  workloadSelector: {labels: {app: app}}
  outboundTrafficPolicy: {mode: ALLOW_ANY}
"""
    mesh = "outboundTrafficPolicy: {mode: REGISTRY_ONLY}"
    config = generate_all(CAPTURED, push(sidecar, mesh=mesh))
    outbound = by_name(by_name(config["LDS"])["virtualOutbound"]["filter_chains"])
    assert tcp_target(outbound["virtualOutbound-catchall-tcp"]) == "PassthroughCluster"
    other = dataclasses.replace(CAPTURED, labels={"app": "other"})
    config = generate_all(other, push(sidecar, mesh=mesh))
    outbound = by_name(by_name(config["LDS"])["virtualOutbound"]["filter_chains"])
    assert tcp_target(outbound["virtualOutbound-catchall-tcp"]) == "BlackHoleCluster"


def test_a_captured_sidecar_gets_the_passthrough_clusters():
    clusters = by_name(generate_all(CAPTURED, push())["CDS"])
    assert clusters["PassthroughCluster"]["type"] == "ORIGINAL_DST"
    assert clusters["PassthroughCluster"]["lb_policy"] == "CLUSTER_PROVIDED"
    inbound = clusters["InboundPassthroughCluster"]
    assert inbound["type"] == "ORIGINAL_DST"
    assert inbound["upstream_bind_config"]["source_address"]["address"] == "127.0.0.6"
    # The app's own port, reached from 127.0.0.6 so iptables does not capture it again.
    app = clusters["inbound|8080||"]
    assert app["upstream_bind_config"]["source_address"]["address"] == "127.0.0.6"
    plain = dataclasses.replace(CAPTURED, metadata={})
    assert "PassthroughCluster" not in by_name(generate_all(plain, push())["CDS"])


def test_listeners_are_shared_by_workloads_alike():
    twin_entry = """
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: app-2, namespace: default}
spec: {address: 10.1.0.3, labels: {app: app}}
"""
    p = push(twin_entry)

    def listeners(proxy: FakeProxy) -> dict[str, Any]:
        return dict(generator.generate(proxy, generator.LISTENER, [], p))

    first = listeners(CAPTURED)
    # Another replica: its listeners carry wildcard addresses only, so they are the same.
    twin = listeners(dataclasses.replace(CAPTURED, ip="10.1.0.3"))
    assert all(twin[name] is message for name, message in first.items())
    # A workload serving nothing shares the outbound side and has its own virtualInbound.
    idle = listeners(dataclasses.replace(CAPTURED, ip="10.1.0.4"))
    assert idle["virtualOutbound"] is first["virtualOutbound"]
    assert idle["virtualInbound"] is not first["virtualInbound"]
    assert idle["virtualInbound"] != first["virtualInbound"]


def test_tproxy_capture_makes_the_capture_listeners_transparent():
    tproxy = dataclasses.replace(CAPTURED, metadata={"INTERCEPTION_MODE": "TPROXY"})
    listeners = by_name(generate_all(tproxy, push())["LDS"])
    assert listeners["virtualOutbound"]["transparent"] is True
    assert listeners["virtualInbound"]["transparent"] is True
    assert "transparent" not in by_name(generate_all(CAPTURED, push())["LDS"])["virtualOutbound"]


def test_kubernetes_services_are_reached_at_their_cluster_ips():
    # Istio's Kubernetes conversion: a cluster IP is the service's address, `http` names an
    # HTTP port, `tcp-`/`mysql` TCP ones (the registry's conversion, as Pilot runs it).
    registry = MemoryRegistry()
    for name, ip, port in (("ratings", "10.96.7.7", {"name": "http", "port": 9080}),
                           ("mysqldb", "10.96.7.8", {"name": "tcp", "port": 3306})):  # fmt: skip
        service = models.V1Service.from_dict(
            {
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"clusterIP": ip, "ports": [port]},
            }
        )
        registry.add_service(
            conversion.service(service, domain="cluster.local", trust_domain="cluster.local")
        )
    kube_push = build_push_context({}, ServiceIndex.read(registry))
    config = generate_all(CAPTURED, kube_push)
    listeners = by_name(config["LDS"])
    mysql = listeners["10.96.7.8_3306"]
    assert (
        tcp_target(mysql["filter_chains"][0]) == "outbound|3306||mysqldb.default.svc.cluster.local"
    )
    ratings = by_name(config["RDS"])["9080"]["virtual_hosts"][0]
    assert {"ratings", "ratings:9080", "10.96.7.7", "10.96.7.7:9080"} <= set(ratings["domains"])
