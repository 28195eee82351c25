"""Kubernetes objects to the service model, rule by rule (Istio's kube conversion)."""

from __future__ import annotations

import pytest
from kubernetes.aio.client import models

from pilot.model.service import Protocol, Resolution
from pilot.registry.kube import conversion


def svc(spec: dict, name: str = "reviews", namespace: str = "default", **meta) -> models.V1Service:
    return models.V1Service.from_dict(
        {"metadata": {"name": name, "namespace": namespace, **meta}, "spec": spec}
    )


def pod(name: str, labels: dict, account: str | None = "bookinfo-reviews", **meta) -> models.V1Pod:
    spec: dict = {"containers": [{"name": "app"}]}
    if account is not None:
        spec["serviceAccountName"] = account
    return models.V1Pod.from_dict(
        {"metadata": {"name": name, "namespace": "default", "labels": labels, **meta}, "spec": spec}
    )


def endpoint_slice(
    ports: list, endpoints: list, address_type: str = "IPv4"
) -> models.V1EndpointSlice:
    return models.V1EndpointSlice.from_dict(
        {
            "metadata": {
                "name": "reviews-abcde",
                "namespace": "default",
                "labels": {"kubernetes.io/service-name": "reviews"},
            },
            "addressType": address_type,
            "ports": ports,
            "endpoints": endpoints,
        }
    )


def at(ip: str, pod_name: str | None = None, ready: bool | None = True) -> dict:
    endpoint: dict = {"addresses": [ip]}
    if ready is not None:
        endpoint["conditions"] = {"ready": ready}
    if pod_name:
        endpoint["targetRef"] = {"kind": "Pod", "name": pod_name, "namespace": "default"}
    return endpoint


def convert(service: models.V1Service):
    return conversion.service(service, domain="cluster.local", trust_domain="cluster.local")


@pytest.mark.parametrize(
    ("name", "ip_protocol", "app_protocol", "expected"),
    [
        ("http", None, None, Protocol.HTTP),
        ("http-web", "TCP", None, Protocol.HTTP),
        ("HTTP2", None, None, Protocol.HTTP2),
        ("grpc", None, None, Protocol.GRPC),
        ("grpc-web", None, None, Protocol.GRPC_WEB),
        ("grpc-web-api", None, None, Protocol.GRPC_WEB),  # before the general prefix rule
        ("grpc-api", None, None, Protocol.GRPC),
        ("https-admin", None, None, Protocol.HTTPS),
        ("tls", None, None, Protocol.TLS),
        ("mongo", None, None, Protocol.MONGO),
        ("redis-cache", None, None, Protocol.REDIS),
        ("mysql", None, None, Protocol.MYSQL),
        ("tcp-db", None, None, Protocol.TCP),
        ("http_proxy", None, None, Protocol.HTTP_PROXY),
        ("", None, None, Protocol.UNSUPPORTED),  # unnamed: sniffed, as Istio's "auto"
        ("metrics", None, None, Protocol.UNSUPPORTED),
        ("web-api", None, None, Protocol.UNSUPPORTED),
        ("http", "UDP", None, Protocol.UDP),  # UDP whatever the name says
        ("tcp", None, "http", Protocol.HTTP),  # appProtocol wins over the name
        ("web", None, "kubernetes.io/h2c", Protocol.HTTP2),
        ("web", None, "kubernetes.io/ws", Protocol.HTTP),
        ("web", None, "kubernetes.io/wss", Protocol.HTTPS),
        ("web", None, "grpc-web", Protocol.GRPC_WEB),
        ("http", None, "example.com/custom", Protocol.UNSUPPORTED),  # appProtocol still wins
    ],
)
def test_port_protocols_as_istio_reads_them(name, ip_protocol, app_protocol, expected):
    assert conversion.protocol(8080, name, ip_protocol, app_protocol) is expected


@pytest.mark.parametrize("port", [25, 53, 3306, 27017])
def test_istios_well_known_ports_are_tcp_when_nothing_names_a_protocol(port):
    assert conversion.protocol(port, "", None, None) is Protocol.TCP
    assert conversion.protocol(port, "db", None, None) is Protocol.TCP
    # A name or appProtocol that says HTTP still does.
    assert conversion.protocol(port, "http-db", None, None) is Protocol.HTTP
    assert conversion.protocol(3307, "", None, None) is Protocol.UNSUPPORTED


def test_a_service_is_its_fqdn_with_its_cluster_ip_and_ports():
    service = convert(
        svc(
            {
                "clusterIP": "10.96.0.4",
                "ports": [{"name": "http", "port": 9080, "targetPort": 9080}],
            }
        )
    )
    assert service.hostname == "reviews.default.svc.cluster.local"
    assert (service.namespace, service.address, service.resolution) == (
        "default",
        "10.96.0.4",
        Resolution.CLIENT_SIDE_LB,
    )
    assert [(p.name, p.number, p.protocol) for p in service.ports] == [
        ("http", 9080, Protocol.HTTP)
    ]
    other = conversion.service(
        svc({"ports": [{"port": 80}]}, name="api", namespace="shop"),
        domain="corp.example",
        trust_domain="corp.example",
    )
    assert other.hostname == "api.shop.svc.corp.example"
    assert other.address == "0.0.0.0"  # no cluster IP (yet): unspecified


def test_headless_and_external_name_services():
    headless = convert(svc({"clusterIP": "None", "ports": [{"name": "tcp", "port": 27017}]}))
    assert headless.resolution is Resolution.PASSTHROUGH
    assert headless.address == "0.0.0.0"
    external = convert(svc({"type": "ExternalName", "externalName": "db.example.com"}))
    assert external.mesh_external
    assert external.resolution is Resolution.DNS_LB


def test_service_accounts_from_istios_annotations():
    annotations = {
        "alpha.istio.io/kubernetes-serviceaccounts": "vm-a,vm-b",
        "alpha.istio.io/canonical-serviceaccounts": "spiffe://other.domain/ns/x/sa/y",
    }
    service = convert(svc({"ports": [{"port": 80}]}, annotations=annotations))
    assert service.service_accounts == (
        "spiffe://other.domain/ns/x/sa/y",
        "spiffe://cluster.local/ns/default/sa/vm-a",
        "spiffe://cluster.local/ns/default/sa/vm-b",
    )


def test_instances_from_slices_are_joined_with_their_pods():
    service = convert(svc({"ports": [{"name": "http", "port": 9080}]}))
    pods = {
        ("default", "reviews-v1-aaa"): pod(
            "reviews-v1-aaa",
            {"app": "reviews", "version": "v1", "security.istio.io/tlsMode": "istio"},
            ownerReferences=[
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "reviews-v1-5d9b8c",
                    "uid": "u",
                }
            ],
        )
    }
    pods[("default", "reviews-v1-aaa")].metadata.labels["pod-template-hash"] = "5d9b8c"
    found = conversion.instances_from_slices(
        service,
        [endpoint_slice([{"name": "http", "port": 9081}], [at("10.1.0.4", "reviews-v1-aaa")])],
        pods,
    )
    (endpoint,) = found[9080]
    assert (endpoint.address, endpoint.port, endpoint.service_port.number) == (
        "10.1.0.4",
        9081,
        9080,
    )
    assert endpoint.labels["version"] == "v1"
    assert endpoint.has_sidecar
    assert not endpoint.captured  # no istio-init: the sidecar is reached on its own port
    assert (endpoint.service_account, endpoint.workload_name) == ("bookinfo-reviews", "reviews-v1")


@pytest.mark.parametrize("init", ["istio-init", "istio-validation"])
def test_a_pod_with_istios_capture_init_container_is_captured(init: str):
    service = convert(svc({"ports": [{"name": "http", "port": 9080}]}))
    captured = pod("reviews-v1-aaa", {"app": "reviews", "security.istio.io/tlsMode": "istio"})
    captured.spec.init_containers = [models.V1Container(name=init)]
    found = conversion.instances_from_slices(
        service,
        [endpoint_slice([{"name": "http", "port": 9080}], [at("10.1.0.4", "reviews-v1-aaa")])],
        {("default", "reviews-v1-aaa"): captured},
    )
    (endpoint,) = found[9080]
    assert endpoint.captured


def test_only_ready_endpoints_with_known_pods_serve():
    service = convert(svc({"ports": [{"name": "http", "port": 9080}]}))
    pods = {
        ("default", "a"): pod("a", {"v": "1"}),
        ("default", "b"): pod("b", {"v": "2"}, account=None),
    }
    found = conversion.instances_from_slices(
        service,
        [
            endpoint_slice(
                [{"name": "http", "port": 9080}],
                [
                    at("10.1.0.1", "a"),
                    at("10.1.0.2", "b", ready=None),  # no conditions: ready, as Kubernetes reads it
                    at("10.1.0.3", "a", ready=False),  # not ready (or terminating): no traffic
                    at("10.1.0.4", "gone"),  # a pod not seen yet: left out until it is
                    at("192.168.7.7"),  # an address no pod owns: no labels
                ],
            )
        ],
        pods,
    )
    assert [(e.address, e.service_account) for e in found[9080]] == [
        ("10.1.0.1", "bookinfo-reviews"),
        ("10.1.0.2", "default"),  # a pod without an account runs as `default`
        ("192.168.7.7", ""),
    ]


def test_each_service_port_takes_the_slice_port_of_its_name():
    service = convert(
        svc({"ports": [{"name": "http", "port": 80}, {"name": "grpc", "port": 8080}]})
    )
    slices = [
        endpoint_slice(
            [{"name": "http", "port": 9080}, {"name": "grpc", "port": 9090}], [at("10.1.0.1")]
        ),
        endpoint_slice([{"name": "metrics", "port": 15090}], [at("10.1.0.2")]),
        endpoint_slice([{"name": "http", "port": 9080}], [at("fd00::1")], address_type="FQDN"),
    ]
    found = conversion.instances_from_slices(service, slices, {})
    assert [(e.address, e.port) for e in found[80]] == [("10.1.0.1", 9080)]
    assert [(e.address, e.port) for e in found[8080]] == [("10.1.0.1", 9090)]


def test_instances_from_endpoints_leave_not_ready_addresses_out():
    service = convert(svc({"ports": [{"name": "http", "port": 9080}]}))
    endpoints = models.V1Endpoints.from_dict(
        {
            "metadata": {"name": "reviews", "namespace": "default"},
            "subsets": [
                {
                    "addresses": [
                        {
                            "ip": "10.1.0.4",
                            "targetRef": {"kind": "Pod", "name": "a", "namespace": "default"},
                        }
                    ],
                    "notReadyAddresses": [{"ip": "10.1.0.5"}],
                    "ports": [{"name": "http", "port": 9080}],
                }
            ],
        }
    )
    found = conversion.instances_from_endpoints(
        service, endpoints, {("default", "a"): pod("a", {"v": "1"})}
    )
    assert [(e.address, e.labels) for e in found[9080]] == [("10.1.0.4", {"v": "1"})]
    assert conversion.instances_from_endpoints(service, None, {}) == {9080: ()}


def test_workload_names():
    assert conversion.workload_name(pod("solo", {})) == "solo"
    owned = pod(
        "x",
        {},
        ownerReferences=[{"apiVersion": "batch/v1", "kind": "Job", "name": "backup", "uid": "u"}],
    )
    assert conversion.workload_name(owned) == "backup"


def test_slice_service():
    assert conversion.slice_service(endpoint_slice([], [])) == "reviews"


def test_an_endpoint_is_at_its_pods_istio_locality():
    service = convert(svc({"ports": [{"name": "http", "port": 9080}]}))
    pods = {
        ("default", "a"): pod("a", {"app": "reviews", "istio-locality": "region1.zone1.sub1"}),
        ("default", "b"): pod("b", {"app": "reviews"}),
    }
    slices = [
        endpoint_slice([{"name": "http", "port": 9080}], [at("10.1.0.4", "a"), at("10.1.0.5", "b")])
    ]
    found = conversion.instances_from_slices(service, slices, pods)
    assert [(e.address, e.locality) for e in found[9080]] == [
        ("10.1.0.4", "region1/zone1/sub1"),
        ("10.1.0.5", ""),
    ]
