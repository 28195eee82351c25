"""Ports without a protocol, as a captured sidecar sniffs them: outbound, inbound, RDS, Envoy."""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from kubernetes.aio.client import models

from pilot.model.index import ServiceIndex
from pilot.model.push_context import MeshOptions, PushContext, build_push_context
from pilot.model.service import Endpoint, Protocol
from pilot.networking import sniffing
from pilot.networking.envoy_validate_test import bootstrap, validate
from pilot.networking.outbound_test import CAPTURED, by_name, tcp_target
from pilot.networking.testing import generate_all
from pilot.registry.kube import conversion
from pilot.registry.memory import MemoryRegistry
from pkg.config import loader
from pkg.config.mesh import parse_mesh_config

HCM = "envoy.filters.network.http_connection_manager"
# Kubernetes Services whose ports name no protocol (`web`, no appProtocol): one with a
# cluster IP, one without; MySQL's port left unnamed (TCP, Istio's well-known port); and the
# captured workload's own `app`, serving 7070 unnamed too.
SERVICES = (
    ("web", "10.96.8.1", {"name": "web", "port": 7070}),
    ("bare", None, {"name": "bare", "port": 7171}),
    ("db", "10.96.8.3", {"name": "", "port": 3306}),  # well-known: TCP
    ("app", None, {"name": "echo", "port": 7070}),
)
ABORT = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: default}
spec:
  hosts: [web]
  http:
  - match: [{headers: {x-fault: {exact: "1"}}}]
    fault: {abort: {httpStatus: 418, percentage: {value: 100}}}
    route: [{destination: {host: web}}]
  - route: [{destination: {host: web}}]
"""


def kube_push(*configs: str, mesh: str = "", sds: bool = False) -> PushContext:
    registry = MemoryRegistry()
    for name, ip, port in SERVICES:
        spec: dict[str, Any] = {"ports": [port]}
        if ip:
            spec["clusterIP"] = ip
        service = conversion.service(
            models.V1Service.from_dict(
                {"metadata": {"name": name, "namespace": "default"}, "spec": spec}
            ),
            domain="cluster.local",
            trust_domain="cluster.local",
        )
        registry.add_service(service)
        if name == "app":
            labels = {"app": "app", **({"security.istio.io/tlsMode": "istio"} if sds else {})}
            endpoint = Endpoint(service.hostname, service.ports[0], CAPTURED.ip, 7070, labels,
                                "default", captured=True)  # fmt: skip
            registry.set_instances(service.hostname, 7070, [endpoint])
    kinds: dict[str, list[Any]] = {}
    for resource in loader.load_text("\n---\n".join(configs), source="test") if configs else []:
        kinds.setdefault(resource.schema.kind, []).append(resource)
    options = MeshOptions(mesh_config=parse_mesh_config(mesh)) if mesh else None
    return build_push_context(kinds, ServiceIndex.read(registry), options)


def test_kubernetes_ports_without_a_known_prefix_are_sniffed():
    push = kube_push()
    protocols = {s.hostname.split(".")[0]: s.ports[0].protocol for s in push.services.values()}
    assert protocols == {
        "web": Protocol.UNSUPPORTED,
        "bare": Protocol.UNSUPPORTED,
        "db": Protocol.TCP,
        "app": Protocol.UNSUPPORTED,
    }


def test_an_outbound_sniffed_listener_has_a_tcp_chain_then_an_http_chain():
    listeners = by_name(generate_all(CAPTURED, kube_push(ABORT))["LDS"])
    web = listeners["10.96.8.1_7070"]
    assert [f["name"] for f in web["listener_filters"]] == ["envoy.filters.listener.http_inspector"]
    assert web["listener_filters_timeout"] == "0s"  # Istio's default: wait for the client
    assert web["continue_on_listener_filters_timeout"] is True
    tcp, http = web["filter_chains"]
    # raw_buffer as the HTTP chain has, or Envoy would pick no chain for plain TCP.
    assert tcp["filter_chain_match"] == {"transport_protocol": "raw_buffer"}
    assert tcp_target(tcp) == "outbound|7070||web.default.svc.cluster.local"
    assert http["filter_chain_match"] == {
        "transport_protocol": "raw_buffer",
        "application_protocols": ["http/1.1", "h2c"],
    }
    (manager,) = http["filters"]
    assert manager["name"] == HCM
    # Its own table: the service has an address.
    assert (
        manager["typed_config"]["rds"]["route_config_name"] == "web.default.svc.cluster.local:7070"
    )
    # Its upstream mTLS offers Istio's HTTP ALPN, so the server's sidecar picks its HTTP chain.
    first, *rest = manager["typed_config"]["http_filters"]
    assert first["name"] == "envoy.filters.http.set_filter_state"
    (state,) = first["typed_config"]["on_request_headers"]
    assert state["object_key"] == "envoy.network.application_protocols"
    assert state["format_string"]["text_format_source"]["inline_string"] == "istio-http/1.1"
    assert [f["name"] for f in rest] == ["envoy.filters.http.fault", "envoy.filters.http.router"]
    # Without an address: the port's shared table. The well-known port stays plain TCP.
    bare = listeners["0.0.0.0_7171"]
    assert bare["filter_chains"][1]["filters"][0]["typed_config"]["rds"] == {
        "route_config_name": "7171",
        "config_source": manager["typed_config"]["rds"]["config_source"],
    }
    db = listeners["10.96.8.3_3306"]
    assert "listener_filters" not in db
    assert [c.get("filter_chain_match") for c in db["filter_chains"]] == [None]


def test_the_sniffed_services_table_holds_its_virtual_service_for_every_host():
    tables = by_name(generate_all(CAPTURED, kube_push(ABORT))["RDS"])
    assert "web.default.svc.cluster.local:7070" in tables
    (host,) = tables["web.default.svc.cluster.local:7070"]["virtual_hosts"]
    assert host["domains"] == ["*"]  # Istio's: the listener already chose the service
    fault, default = host["routes"]
    assert fault["match"]["headers"][0]["name"] == "x-fault"
    abort = fault["typed_per_filter_config"]["envoy.filters.http.fault"]["abort"]
    assert abort["http_status"] == 418
    assert default["route"]["cluster"] == "outbound|7070||web.default.svc.cluster.local"
    # The port's shared table lists sniffed services too, before its catch-all.
    shared = [h["name"] for h in tables["7171"]["virtual_hosts"]]
    assert shared == ["bare.default.svc.cluster.local:7171", "allow_any"]


def test_a_detection_timeout_from_mesh_config():
    mesh = "protocolDetectionTimeout: 1.5s\n"
    listeners = by_name(generate_all(CAPTURED, kube_push(mesh=mesh))["LDS"])
    assert listeners["10.96.8.1_7070"]["listener_filters_timeout"] == "1.500s"
    assert listeners["virtualInbound"]["listener_filters_timeout"] == "1.500s"


def _inbound_chains(push: PushContext, proxy: Any = CAPTURED) -> list[dict[str, Any]]:
    listener = by_name(generate_all(proxy, push)["LDS"])["virtualInbound"]
    return [c for c in listener["filter_chains"] if c["name"] == "0.0.0.0_7070"]


def _kinds(chain: dict[str, Any]) -> str:
    names = [f["name"] for f in chain["filters"]]
    return "http" if names == [HCM] else "tcp" if names[-1].endswith("tcp_proxy") else "?"


def test_inbound_plaintext_tells_http_from_tcp_and_inspects_only_that_port():
    listener = by_name(generate_all(CAPTURED, kube_push())["LDS"])["virtualInbound"]
    inspector = listener["listener_filters"][-1]
    assert inspector["name"] == "envoy.filters.listener.http_inspector"
    assert inspector["filter_disabled"] == {
        "not_match": {"destination_port_range": {"start": 7070, "end": 7071}}
    }
    chains = [c for c in listener["filter_chains"] if c["name"] == "0.0.0.0_7070"]
    assert [(_kinds(c), c["filter_chain_match"]) for c in chains] == [
        ("http", {"destination_port": 7070, "transport_protocol": "raw_buffer",
                  "application_protocols": ["http/1.1", "h2c"]}),
        ("tcp", {"destination_port": 7070, "transport_protocol": "raw_buffer"}),
    ]  # fmt: skip


def _mtls(mode: str) -> str:
    return f"""
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {{name: default, namespace: default}}
spec: {{mtls: {{mode: {mode}}}}}
"""


def test_inbound_under_mtls_splits_by_the_alpn_istio_sidecars_offer():
    proxy = dataclasses.replace(CAPTURED, metadata={**CAPTURED.metadata, "SDS": "true"})
    permissive = _inbound_chains(kube_push(_mtls("PERMISSIVE"), sds=True), proxy)
    shapes = [
        (_kinds(c), c["filter_chain_match"].get("transport_protocol"),
         c["filter_chain_match"].get("application_protocols"), "transport_socket" in c)
        for c in permissive
    ]  # fmt: skip
    assert shapes == [
        ("http", "tls", ["istio-http/1.0", "istio-http/1.1", "istio-h2"], True),
        ("http", "raw_buffer", ["http/1.1", "h2c"], False),
        ("tcp", "tls", ["istio-peer-exchange", "istio"], True),
        ("tcp", "raw_buffer", None, False),
        ("tcp", "tls", None, False),  # the app's own TLS, passed on as it is
    ]
    strict = _inbound_chains(kube_push(_mtls("STRICT"), sds=True), proxy)
    assert [
        (_kinds(c), c["filter_chain_match"].get("application_protocols"), "transport_socket" in c)
        for c in strict
    ] == [("http", list(sniffing.MTLS_HTTP_ALPNS), True), ("tcp", None, True)]


def test_the_real_envoy_accepts_sniffed_listeners_in_every_mode(tmp_path: pathlib.Path):
    proxy = dataclasses.replace(CAPTURED, metadata={**CAPTURED.metadata, "SDS": "true"})
    for mode in ("DISABLE", "PERMISSIVE", "STRICT"):
        config = generate_all(proxy, kube_push(ABORT, _mtls(mode), sds=True))
        # The SDS secrets are not there to fetch; validation only checks the shape.
        done = validate(bootstrap(config), tmp_path)
        assert done.returncode == 0, f"{mode}: {done.stdout}{done.stderr}"
    # The check can fail: an HTTP chain matching what the TCP chain matches.
    config = generate_all(CAPTURED, kube_push())
    web = next(x for x in config["LDS"] if x["name"] == "10.96.8.1_7070")
    web["filter_chains"][1]["filter_chain_match"] = web["filter_chains"][0]["filter_chain_match"]
    done = validate(bootstrap(config), tmp_path)
    assert done.returncode != 0
