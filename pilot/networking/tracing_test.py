"""Tracing from MeshConfig into every HCM and the `zipkin` cluster, as Istio's Pilot writes it."""

import dataclasses

from google.protobuf import json_format

from pilot.model.push_context import MeshOptions, PushContext
from pilot.networking import generator, tracing
from pilot.networking.cache import GenerationCache
from pilot.networking.testing import FakeProxy, bookinfo_configs, bookinfo_push, push_of
from pkg.config.mesh import parse_mesh_config

MESH = (
    "enableTracing: true\n"
    "defaultConfig: {tracing: {sampling: 100, zipkin: {address: 127.0.0.1:9411}}}\n"
)
REVIEWS = FakeProxy(
    "sidecar",
    "127.0.1.4",
    "default",
    {"app": "reviews", "version": "v1"},
    {"MESH_ID": "cluster.local", "CLUSTER_ID": "Kubernetes"},
)
GATEWAY = FakeProxy(
    "router",
    "127.0.1.1",
    "istio-system",
    {"app": "istio-ingressgateway", "istio": "ingressgateway"},
    {},
)


def with_mesh(push: PushContext, text: str) -> PushContext:
    mesh = dataclasses.replace(push.mesh, mesh_config=parse_mesh_config(text))
    return dataclasses.replace(push, mesh=mesh, memo={})


def hcms(proxy, push) -> dict[str, list[dict]]:
    """Every HCM's typed config, by listener name, as Envoy would read them."""
    found: dict[str, list[dict]] = {}
    for name, message in generator.build_listeners(proxy, push, []):
        listener = json_format.MessageToDict(message, preserving_proto_field_name=True)
        for chain in listener["filter_chains"]:
            for network_filter in chain["filters"]:
                if network_filter["name"] == "envoy.filters.network.http_connection_manager":
                    found.setdefault(name, []).append(network_filter["typed_config"])
    return found


def test_every_hcm_of_a_sidecar_gets_the_zipkin_tracer_with_istios_sampling_and_tags():
    push = with_mesh(bookinfo_push(), MESH)
    by_listener = hcms(REVIEWS, push)
    assert set(by_listener) == {"virtualOutbound", "virtualInbound"}
    for config in [c for configs in by_listener.values() for c in configs]:
        trace = config["tracing"]
        assert trace["client_sampling"] == {"value": 100.0}
        assert trace["overall_sampling"] == {"value": 100.0}
        assert trace["random_sampling"] == {"value": 100.0}
        provider = trace["provider"]
        assert provider["name"] == "envoy.tracers.zipkin"
        assert provider["typed_config"] == {
            "@type": "type.googleapis.com/envoy.config.trace.v3.ZipkinConfig",
            "collector_cluster": "zipkin",
            "collector_endpoint": "/api/v2/spans",
            "collector_endpoint_version": "HTTP_JSON",
            "collector_hostname": "127.0.0.1",
            "trace_id_128bit": True,
            "shared_span_context": False,
        }
        tags = {t["tag"]: t["literal"]["value"] for t in trace["custom_tags"]}
        assert tags == {
            "istio.canonical_revision": "v1",
            "istio.canonical_service": "reviews",
            "istio.cluster_id": "Kubernetes",
            "istio.mesh_id": "cluster.local",
            "istio.namespace": "default",
        }


def test_the_gateway_traces_too_and_every_proxy_gets_the_zipkin_cluster():
    push = with_mesh(bookinfo_push("bookinfo-gateway"), MESH)
    (gateway,) = hcms(GATEWAY, push).values()
    assert gateway[0]["tracing"]["provider"]["name"] == "envoy.tracers.zipkin"
    for proxy in (GATEWAY, REVIEWS):
        clusters = dict(generator.build_clusters(proxy, push, []))
        zipkin = json_format.MessageToDict(clusters["zipkin"], preserving_proto_field_name=True)
        assert zipkin["type"] == "STATIC"
        (endpoint,) = zipkin["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert endpoint["endpoint"]["address"]["socket_address"] == {
            "address": "127.0.0.1",
            "port_value": 9411,
        }


def test_no_tracing_without_enable_tracing_or_a_zipkin_address():
    for text in (
        "defaultConfig: {tracing: {zipkin: {address: 127.0.0.1:9411}}}\n",  # enableTracing off
        "enableTracing: true\n",  # no tracer
    ):
        push = with_mesh(bookinfo_push(), text)
        for configs in hcms(REVIEWS, push).values():
            assert all("tracing" not in c for c in configs)
        assert "zipkin" not in dict(generator.build_clusters(REVIEWS, push, []))


def test_sampling_defaults_as_pilot_trace_sampling_does():
    assert tracing.sampling(parse_mesh_config("defaultConfig: {tracing: {sampling: 0}}")) == 1.0
    assert tracing.sampling(parse_mesh_config("defaultConfig: {tracing: {sampling: 25.5}}")) == 25.5


def test_a_dns_name_makes_a_strict_dns_cluster():
    mesh = parse_mesh_config(
        "enableTracing: true\ndefaultConfig: {tracing: {zipkin: {address: zipkin.istio-system:9411}}}"
    )
    (cluster,) = tracing.collector_clusters(mesh)
    assert cluster["type"] == "STRICT_DNS"


def test_workloads_share_a_listener_template_only_with_the_same_span_tags():
    # Three reviews-v1 replicas on addresses with no endpoints of their own (same inbound
    # ports: none), one in another cluster: its tags must not come from the shared template.
    cache = GenerationCache(verify=True)
    mesh = MeshOptions(mesh_config=parse_mesh_config(MESH))
    push = push_of(bookinfo_configs(), mesh, cache=cache)
    meta = {"MESH_ID": "cluster.local", "CLUSTER_ID": "Kubernetes"}
    labels = {"app": "reviews", "version": "v1"}
    first = FakeProxy("sidecar", "127.0.9.1", "default", labels, meta)
    second = FakeProxy("sidecar", "127.0.9.2", "default", labels, meta)
    other = FakeProxy("sidecar", "127.0.9.3", "default", labels, {**meta, "CLUSTER_ID": "east"})

    def cluster_ids(proxy):
        found = set()
        for configs in hcms(proxy, push).values():
            for config in configs:
                tags = {t["tag"]: t["literal"]["value"] for t in config["tracing"]["custom_tags"]}
                found.add(tags["istio.cluster_id"])
        return found

    assert cluster_ids(first) == {"Kubernetes"}
    misses = cache.misses
    assert cluster_ids(second) == {"Kubernetes"}
    assert cache.misses == misses  # the second replica reused the first one's template
    assert cluster_ids(other) == {"east"}
    assert cache.misses > misses
    addresses = {
        json_format.MessageToDict(m)["address"]["socketAddress"]["address"]
        for _, m in generator.build_listeners(second, push, [])
        if "address" in json_format.MessageToDict(m)
    }
    assert addresses == {"127.0.9.2"}
