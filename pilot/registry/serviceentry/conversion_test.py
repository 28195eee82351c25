from pilot.model.service import Protocol, Resolution
from pilot.registry.serviceentry import conversion
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

RESOURCES = loader.load_text(ENTRIES, source="test")
REVIEWS, EXTERNAL = (r for r in RESOURCES if r.schema.kind == "ServiceEntry")
WORKLOADS = [r for r in RESOURCES if r.schema.kind == "WorkloadEntry"]


def test_every_host_is_a_service():
    services = {s.hostname: s for e in (REVIEWS, EXTERNAL) for s in conversion.services_of(e)}
    assert set(services) == {
        "reviews.default.svc.cluster.local",
        "api.example.com",
        "www.example.com",
    }
    external = services["api.example.com"]
    assert external.mesh_external
    assert external.resolution is Resolution.DNS_LB
    assert external.ports[0].protocol is Protocol.TLS


def test_selector_picks_workloads_of_the_same_namespace_only():
    assert [w.metadata.name for w in WORKLOADS if conversion.selects(REVIEWS, w)] == [
        "reviews-v1",
        "reviews-v2",
    ]
    assert not any(conversion.selects(EXTERNAL, w) for w in WORKLOADS)


def test_instances_take_the_workload_port_else_the_target_port():
    (service,) = conversion.services_of(REVIEWS)
    selected = [w for w in WORKLOADS if conversion.selects(REVIEWS, w)]
    instances = conversion.instances_of(REVIEWS, service, service.ports[0], selected)
    assert [(e.workload_name, e.address, e.port) for e in instances] == [
        ("reviews-v1", "127.0.1.4", 9081),  # the ServiceEntry's targetPort
        ("reviews-v2", "127.0.1.5", 9090),  # the workload's own port for `http` wins
    ]
    assert instances[0].labels["version"] == "v1"
    assert instances[0].service_account == "bookinfo-reviews"


def test_a_workload_with_a_network_and_no_address_is_no_endpoint():
    (remote,) = loader.load_text(
        "apiVersion: networking.istio.io/v1alpha3\nkind: WorkloadEntry\n"
        "metadata: {name: reviews-remote}\nspec: {network: network-2, labels: {app: reviews}}\n",
        source="test",
    )
    (service,) = conversion.services_of(REVIEWS)
    selected = [w for w in [*WORKLOADS, remote] if conversion.selects(REVIEWS, w)]
    instances = conversion.instances_of(REVIEWS, service, service.ports[0], selected)
    assert [e.workload_name for e in instances] == ["reviews-v1", "reviews-v2"]


def test_a_service_entry_without_ports_is_a_service_without_endpoints():
    (entry,) = loader.load_text(
        "apiVersion: networking.istio.io/v1alpha3\nkind: ServiceEntry\nmetadata: {name: h}\n"
        "spec: {hosts: [h.example.com], resolution: DNS}\n"
    )
    (service,) = conversion.services_of(entry)
    assert service.hostname == "h.example.com"
    assert service.ports == ()
