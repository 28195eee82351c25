from pilot.model.service import Protocol, Resolution
from pilot.registry.serviceentry import build_index
from pkg.config import loader

ENTRIES = """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: reviews}
spec:
  hosts: [reviews.default.svc.cluster.local]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP, targetPort: 9081}]
  workloadSelector: {labels: {app: reviews}}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: external}
spec:
  hosts: [api.example.com, www.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{number: 443, name: tls, protocol: TLS}]
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: reviews-v1}
spec: {address: 127.0.1.4, labels: {app: reviews, version: v1}, serviceAccount: bookinfo-reviews}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: reviews-v2}
spec: {address: 127.0.1.5, labels: {app: reviews, version: v2}, ports: {http: 9090}}
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: reviews-elsewhere, namespace: other}
spec: {address: 127.0.1.9, labels: {app: reviews}}
"""


def _index():
    resources = loader.load_text(ENTRIES, source="test")
    return build_index(
        [r for r in resources if r.schema.kind == "ServiceEntry"],
        [r for r in resources if r.schema.kind == "WorkloadEntry"],
    )


def test_every_host_is_a_service():
    index = _index()
    assert set(index.services) == {
        "reviews.default.svc.cluster.local",
        "api.example.com",
        "www.example.com",
    }
    external = index.services["api.example.com"]
    assert external.mesh_external and external.resolution is Resolution.DNS_LB
    assert external.ports[0].protocol is Protocol.TLS


def test_selector_picks_workloads_of_the_same_namespace_with_their_ports():
    endpoints = _index().endpoints_of("reviews.default.svc.cluster.local", 9080)
    assert [(e.workload_name, e.address, e.port) for e in endpoints] == [
        ("reviews-v1", "127.0.1.4", 9081),  # the ServiceEntry's targetPort
        ("reviews-v2", "127.0.1.5", 9090),  # the workload's own port for `http` wins
    ]
    assert endpoints[0].labels["version"] == "v1"
    assert endpoints[0].service_account == "bookinfo-reviews"


def test_endpoints_at_an_address_are_the_workload_own_instances():
    (endpoint,) = _index().endpoints_at("127.0.1.5")
    assert endpoint.hostname == "reviews.default.svc.cluster.local"


def test_a_workload_with_a_network_and_no_address_is_no_endpoint():
    extra = """
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: reviews-remote}
spec: {network: network-2, labels: {app: reviews}}
"""
    resources = loader.load_text(ENTRIES + extra, source="test")
    index = build_index(
        [r for r in resources if r.schema.kind == "ServiceEntry"],
        [r for r in resources if r.schema.kind == "WorkloadEntry"],
    )
    endpoints = index.endpoints_of("reviews.default.svc.cluster.local", 9080)
    assert [e.workload_name for e in endpoints] == ["reviews-v1", "reviews-v2"]


def test_a_service_entry_without_ports_is_a_service_without_endpoints():
    (entry,) = loader.load_text(
        "apiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntry\nmetadata: {name: h}\n"
        "spec: {hosts: [h.example.com], resolution: DNS}\n"
    )
    index = build_index([entry], [])
    assert index.services["h.example.com"].ports == ()
