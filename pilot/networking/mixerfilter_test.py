"""The Mixer filter Pilot writes into listeners, from MeshConfig, as Istio 1.4's plugin did."""

import dataclasses
from typing import Any

from google.protobuf import json_format

from api.mixer.v1.config.client import client_config_pb2
from pilot.model.push_context import PushContext
from pilot.networking import generator, mixerfilter
from pilot.networking.testing import FakeProxy, bookinfo_push
from pkg.config import loader
from pkg.config.mesh import parse_mesh_config

WASM = "/opt/mixer_filter.wasm"
MESH = "mixerCheckServer: 127.0.0.1:9091\nmixerReportServer: 127.0.0.1:9091\n"
POLICY = loader.load_file(
    generator.__file__.replace(
        "pilot/networking/generator.py",
        "samples/bookinfo/policy/mixer-rule-productpage-ratelimit.yaml",
    )
)
FAIL_CLOSE = client_config_pb2.NetworkFailPolicy.FAIL_CLOSE
FAIL_OPEN = client_config_pb2.NetworkFailPolicy.FAIL_OPEN


def with_mesh(push: PushContext, text: str = MESH, wasm: str = WASM) -> PushContext:
    mesh = dataclasses.replace(
        push.mesh, mesh_config=parse_mesh_config(text), mixer_filter_wasm=wasm
    )
    return dataclasses.replace(push, mesh=mesh, memo={})


def pod(name: str, ip: str, app: str, annotations: dict | None = None) -> FakeProxy:
    metadata: dict[str, Any] = {"NAME": name, "WORKLOAD_NAME": name}
    if annotations:
        metadata["ANNOTATIONS"] = annotations
    return FakeProxy("sidecar", ip, "default", {"app": app, "version": "v1"}, metadata)


RATINGS = pod("ratings-v1", "127.0.1.7", "ratings")
PRODUCTPAGE = pod("productpage-v1", "127.0.1.2", "productpage")
GATEWAY = FakeProxy(
    "router",
    "127.0.1.1",
    "istio-system",
    {"app": "istio-ingressgateway", "istio": "ingressgateway"},
    {"NAME": "istio-ingressgateway"},
)


def http_filters(proxy, push, listener):
    listeners = {
        name: json_format.MessageToDict(msg, preserving_proto_field_name=True)
        for name, msg in generator.build_listeners(proxy, push, [])
    }
    chain = listeners[listener]["filter_chains"][0]
    return chain["filters"][0]["typed_config"]["http_filters"]


def mixer_config(filters) -> client_config_pb2.HttpClientConfig:
    (mixer,) = [f for f in filters if f["name"] == "mixer"]
    wasm = mixer["typed_config"]["config"]
    assert wasm["root_id"] == "mixer"
    assert wasm["vm_config"]["vm_id"] == "mixer"
    assert wasm["vm_config"]["runtime"] == "envoy.wasm.runtime.v8"
    assert wasm["vm_config"]["code"]["local"]["filename"] == WASM
    return json_format.Parse(wasm["configuration"]["value"], client_config_pb2.HttpClientConfig())


def strings(attributes) -> dict:
    out = {}
    for name, value in attributes.attributes.items():
        kind = value.WhichOneof("value")
        out[name] = (
            dict(value.string_map_value.entries)
            if kind == "string_map_value"
            else getattr(value, kind)
        )
    return out


def test_no_mixer_in_the_mesh_config_means_no_filter():
    push = bookinfo_push()
    assert [f["name"] for f in http_filters(RATINGS, push, "virtualInbound")] == [
        "envoy.filters.http.router"
    ]
    names = {name for name, _ in generator.build_clusters(RATINGS, push, [])}
    assert "outbound|9091||127.0.0.1" not in names


def test_inbound_listeners_check_and_report_as_the_destination():
    push = with_mesh(bookinfo_push())
    filters = http_filters(RATINGS, push, "virtualInbound")
    assert [f["name"] for f in filters] == ["mixer", "envoy.filters.http.router"]
    config = mixer_config(filters)
    assert config.transport.check_cluster == "outbound|9091||127.0.0.1"
    assert config.transport.report_cluster == "outbound|9091||127.0.0.1"
    assert config.transport.network_fail_policy.policy == FAIL_CLOSE  # policyCheckFailOpen false
    attrs = strings(config.mixer_attributes)
    assert attrs["destination.uid"] == "kubernetes://ratings-v1.default"
    assert attrs["destination.namespace"] == "default"
    assert attrs["destination.labels"] == {"app": "ratings", "version": "v1"}
    assert attrs["destination.workload.name"] == "ratings-v1"
    assert attrs["destination.ip"] == bytes([127, 0, 1, 7])
    assert attrs["context.reporter.kind"] == "inbound"
    assert attrs["context.reporter.uid"] == "kubernetes://ratings-v1.default"
    assert config.default_destination_service == "inbound|9080||"
    service = config.service_configs["inbound|9080||"]
    assert not service.disable_check_calls
    assert not service.disable_report_calls
    assert strings(service.mixer_attributes) == {
        "destination.service.host": "ratings.default.svc.cluster.local",
        "destination.service.name": "ratings",
        "destination.service.namespace": "default",
        "destination.service.uid": "istio://default/services/ratings",
    }
    assert not config.forward_attributes.attributes


def test_every_filter_chain_of_an_mtls_listener_has_the_filter_once():
    push = with_mesh(bookinfo_push())
    proxy = dataclasses.replace(RATINGS, metadata={**RATINGS.metadata, "SDS": "true"})
    listeners = {
        name: json_format.MessageToDict(msg, preserving_proto_field_name=True)
        for name, msg in generator.build_listeners(proxy, push, [])
    }
    chains = listeners["virtualInbound"]["filter_chains"]
    assert len(chains) == 2  # PERMISSIVE: mutual TLS and plaintext
    for chain in chains:
        filters = chain["filters"][0]["typed_config"]["http_filters"]
        assert [f["name"] for f in filters] == ["mixer", "envoy.filters.http.router"]


def test_outbound_listeners_report_as_the_source_and_forward_its_attributes():
    push = with_mesh(bookinfo_push())
    filters = http_filters(PRODUCTPAGE, push, "virtualOutbound")
    assert [f["name"] for f in filters] == [
        "mixer",
        "envoy.filters.http.fault",
        "envoy.filters.http.router",
    ]
    config = mixer_config(filters)
    source = {
        "source.uid": "kubernetes://productpage-v1.default",
        "source.namespace": "default",
        "source.name": "productpage-v1",
        "source.labels": {"app": "productpage", "version": "v1"},
        "source.workload.name": "productpage-v1",
        "source.workload.namespace": "default",
    }
    assert strings(config.forward_attributes) == source
    assert strings(config.mixer_attributes) == {
        **source,
        "context.reporter.uid": "kubernetes://productpage-v1.default",
        "context.reporter.kind": "outbound",
    }
    assert not config.ignore_forwarded_attributes
    reviews = config.service_configs["reviews.default.svc.cluster.local"]
    # Sidecars do not check as clients unless enableClientSidePolicyCheck is set.
    assert reviews.disable_check_calls
    assert not reviews.disable_report_calls
    assert strings(reviews.forward_attributes)["destination.service.name"] == "reviews"
    assert config.service_configs["default"].disable_check_calls

    client_side = with_mesh(bookinfo_push(), MESH + "enableClientSidePolicyCheck: true\n")
    config = mixer_config(http_filters(PRODUCTPAGE, client_side, "virtualOutbound"))
    assert not config.service_configs["reviews.default.svc.cluster.local"].disable_check_calls


def test_gateways_check_as_clients_and_ignore_forwarded_attributes():
    push = with_mesh(bookinfo_push("bookinfo-gateway"))
    filters = http_filters(GATEWAY, push, "0.0.0.0_8080")
    config = mixer_config(filters)
    assert config.ignore_forwarded_attributes
    assert not config.service_configs["productpage.default.svc.cluster.local"].disable_check_calls
    assert strings(config.mixer_attributes)["source.labels"]["istio"] == "ingressgateway"


def test_mesh_switches_and_the_pod_annotation():
    def inbound(proxy, text=MESH):
        config = mixer_config(
            http_filters(proxy, with_mesh(bookinfo_push(), text), "virtualInbound")
        )
        return (
            config.service_configs["inbound|9080||"].disable_check_calls,
            config.transport.network_fail_policy.policy,
        )

    assert inbound(RATINGS) == (False, FAIL_CLOSE)
    assert inbound(RATINGS, MESH + "policyCheckFailOpen: true\n") == (False, FAIL_OPEN)
    assert inbound(RATINGS, MESH + "disablePolicyChecks: true\n") == (True, FAIL_CLOSE)
    # Only a report server: no checks.
    assert inbound(RATINGS, "mixerReportServer: 127.0.0.1:9091\n")[0]

    def annotated(value):
        return pod("ratings-v1", "127.0.1.7", "ratings", {"policy.istio.io/check": value})

    assert inbound(annotated("disable")) == (True, FAIL_OPEN)
    assert inbound(
        annotated("enable"), MESH + "disablePolicyChecks: true\npolicyCheckFailOpen: true\n"
    ) == (
        False,
        FAIL_CLOSE,
    )
    assert inbound(annotated("allow-on-error")) == (False, FAIL_OPEN)
    # Istio 1.1-1.4 agents put the key itself into the node metadata.
    legacy = FakeProxy(
        "sidecar",
        "127.0.1.7",
        "default",
        {"app": "ratings"},
        {"NAME": "ratings-v1", "policy.istio.io/check": "disable"},
    )
    assert inbound(legacy)[0]


def test_quota_spec_bindings_put_the_quotas_on_the_bound_service_only():
    push = with_mesh(bookinfo_push(extra=POLICY))
    config = mixer_config(http_filters(PRODUCTPAGE, push, "virtualInbound"))
    (spec,) = config.service_configs["inbound|9080||"].quota_spec
    assert [(q.quota, q.charge) for q in spec.rules[0].quotas] == [("requestcountquota", 1)]
    ratings = mixer_config(http_filters(RATINGS, push, "virtualInbound"))
    assert not ratings.service_configs["inbound|9080||"].quota_spec


def test_the_mixer_cluster_speaks_http2_to_the_configured_address():
    push = with_mesh(
        bookinfo_push(), "mixerCheckServer: 127.0.0.1:9091\nmixerReportServer: mixer.example:9092\n"
    )
    clusters = {
        name: json_format.MessageToDict(msg, preserving_proto_field_name=True)
        for name, msg in generator.build_clusters(RATINGS, push, [])
    }
    check = clusters["outbound|9091||127.0.0.1"]
    assert check["type"] == "STATIC"
    options = check["typed_extension_protocol_options"]
    (http,) = options.values()
    assert "http2_protocol_options" in http["explicit_http_config"]
    endpoint = check["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 9091}
    assert clusters["outbound|9092||mixer.example"]["type"] == "STRICT_DNS"


def test_the_filter_config_is_stable_text():
    push = with_mesh(bookinfo_push())
    first = mixer_config(http_filters(PRODUCTPAGE, push, "virtualOutbound"))
    again = with_mesh(bookinfo_push())
    assert mixerfilter.to_json(first) == mixerfilter.to_json(
        mixer_config(http_filters(PRODUCTPAGE, again, "virtualOutbound"))
    )


def test_eds_tells_a_client_the_servers_workload_app_and_version():
    push = bookinfo_push("destination-rule-all")
    cluster = "outbound|9080|v2|reviews.default.svc.cluster.local"
    ((_, assignment),) = generator.build_endpoints(PRODUCTPAGE, push, [cluster])
    endpoint = assignment.endpoints[0].lb_endpoints[0]
    workload = endpoint.metadata.filter_metadata["istio"]["workload"]
    assert workload == "reviews-v2;default;reviews;v2;Kubernetes"


def test_the_check_cache_is_on_unless_pilot_is_told_otherwise():
    push = with_mesh(bookinfo_push())
    assert not mixer_config(
        http_filters(RATINGS, push, "virtualInbound")
    ).transport.disable_check_cache
    off = dataclasses.replace(push, mesh=dataclasses.replace(push.mesh, mixer_check_cache=False))
    assert mixer_config(http_filters(RATINGS, off, "virtualInbound")).transport.disable_check_cache
