import dataclasses
import json
import pathlib
import subprocess

import pytest
from envoy.config.bootstrap.v3 import bootstrap_pb2

# The @type URLs inside the bootstrap resolve only once their modules are imported.
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import (  # noqa: F401
    downstream_connections_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format

from proxy.agent import bootstrap
from proxy.agent.options import AgentOptions


def _options(**changes: object) -> AgentOptions:
    values: dict[str, object] = {
        "proxy_type": "sidecar",
        "ip": "127.0.1.5",
        "pod": "reviews-v1",
        "namespace": "default",
        "labels": {"app": "reviews", "version": "v1"},
        "service_account": "bookinfo-reviews",
        "ports": {"http": 9080},
        "run_dir": pathlib.Path("/tmp/pods/reviews-v1"),
    }
    values.update(changes)
    return AgentOptions(**values)  # type: ignore[arg-type]


def _parse(config: dict) -> bootstrap_pb2.Bootstrap:
    # Through JSON text, as Envoy reads the file; unknown fields fail the parse.
    return json_format.Parse(json.dumps(config), bootstrap_pb2.Bootstrap())


def test_bootstrap_is_a_valid_bootstrap_proto() -> None:
    parsed = _parse(bootstrap.build_bootstrap(_options()))
    assert parsed.node.id == "sidecar~127.0.1.5~reviews-v1.default~default.svc.cluster.local"
    assert parsed.node.cluster == "reviews"
    assert parsed.admin.address.socket_address.address == "127.0.1.5"
    assert parsed.admin.address.socket_address.port_value == 15000


def test_node_metadata_in_istio_format() -> None:
    environ = {"ISTIO_META_DNS_CAPTURE": "true", "ISTIO_META_NAME": "spoofed", "PATH": "/bin"}
    metadata = bootstrap.build_bootstrap(_options(), environ)["node"]["metadata"]
    assert metadata["NAME"] == "reviews-v1"  # the agent's facts win over ISTIO_META_NAME
    assert metadata["NAMESPACE"] == "default"
    assert metadata["LABELS"] == {"app": "reviews", "version": "v1"}
    assert metadata["INSTANCE_IPS"] == "127.0.1.5"
    assert metadata["WORKLOAD_NAME"] == "reviews-v1"
    assert metadata["SERVICE_ACCOUNT"] == "bookinfo-reviews"
    assert metadata["CLUSTER_ID"] == "Kubernetes"
    assert metadata["MESH_ID"] == "cluster.local"
    assert metadata["INTERCEPTION_MODE"] == "NONE"
    assert metadata["ENVOY_STATUS_PORT"] == 15021
    assert metadata["ENVOY_PROMETHEUS_PORT"] == 15090
    assert metadata["ISTIO_VERSION"] == bootstrap.ISTIO_VERSION
    assert json.loads(metadata["POD_PORTS"]) == [
        {"name": "http", "containerPort": 9080, "protocol": "TCP"}
    ]
    assert metadata["DNS_CAPTURE"] == "true"
    assert "PATH" not in metadata
    intercepted = dataclasses.replace(_options(), interception_mode="REDIRECT")
    # What Pilot reads to give the sidecar its capture listeners.
    assert bootstrap.node_metadata(intercepted, environ)["INTERCEPTION_MODE"] == "REDIRECT"
    proxy_config = metadata["PROXY_CONFIG"]
    assert proxy_config["discoveryAddress"] == "127.0.0.1:15010"
    assert proxy_config["statusPort"] == 15020
    assert proxy_config["drainDuration"] == "5s"
    assert proxy_config["concurrency"] == 1
    # The metadata survives the trip into the proto (a Struct) unchanged.
    parsed = _parse(bootstrap.build_bootstrap(_options(), environ))
    assert json_format.MessageToDict(parsed.node.metadata) == json.loads(json.dumps(metadata))


def test_pod_annotations_go_to_pilot_as_node_metadata() -> None:
    assert "ANNOTATIONS" not in bootstrap.build_bootstrap(_options())["node"]["metadata"]
    options = _options(annotations={"policy.istio.io/check": "disable"})
    metadata = bootstrap.build_bootstrap(options)["node"]["metadata"]
    assert metadata["ANNOTATIONS"] == {"policy.istio.io/check": "disable"}


def test_identity_is_the_spiffe_name_of_the_service_account() -> None:
    assert (
        bootstrap.spiffe_identity(_options())
        == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    )


@pytest.mark.parametrize(
    ("proxy_type", "labels", "cluster"),
    [
        ("sidecar", {"app": "ratings"}, "ratings"),
        ("sidecar", {}, "istio-proxy"),
        ("router", {"istio": "ingressgateway", "app": "istio-ingressgateway"}, "ingressgateway"),
        ("router", {"app": "istio-ingressgateway"}, "istio-ingressgateway"),
    ],
)
def test_service_cluster(proxy_type: str, labels: dict[str, str], cluster: str) -> None:
    options = _options(proxy_type=proxy_type, labels=labels, pod="gw")
    assert bootstrap.service_cluster(options) == cluster
    assert bootstrap.node_id(options).startswith(f"{proxy_type}~127.0.1.5~gw.default~")


def test_ads_through_the_reserved_xds_cluster_over_http2() -> None:
    config = bootstrap.build_bootstrap(_options(discovery_address="127.0.0.1:15010"))
    parsed = _parse(config)
    ads = parsed.dynamic_resources.ads_config
    assert ads.api_type == ads.GRPC
    assert ads.transport_api_version == 2  # V3
    assert ads.grpc_services[0].envoy_grpc.cluster_name == "xds-grpc"
    for source in (parsed.dynamic_resources.cds_config, parsed.dynamic_resources.lds_config):
        assert source.HasField("ads")
        assert source.resource_api_version == 2
    clusters = {c.name: c for c in parsed.static_resources.clusters}
    assert set(clusters) == {"xds-grpc", "prometheus_stats", "agent"}
    xds = clusters["xds-grpc"]
    assert xds.type == xds.STATIC
    endpoint = xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address
    assert (endpoint.address, endpoint.port_value) == ("127.0.0.1", 15010)
    options = config["static_resources"]["clusters"][2]["typed_extension_protocol_options"]
    http = options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert http["explicit_http_config"] == {"http2_protocol_options": {}}


def test_discovery_host_name_is_resolved_by_dns() -> None:
    config = bootstrap.build_bootstrap(_options(discovery_address="pilot.local:15010"))
    xds = _parse(config).static_resources.clusters[2]
    assert xds.name == "xds-grpc"
    assert xds.type == xds.STRICT_DNS


def test_bad_discovery_address() -> None:
    with pytest.raises(ValueError, match="host:port"):
        bootstrap.build_bootstrap(_options(discovery_address="pilot"))


def test_static_listeners_like_istio() -> None:
    parsed = _parse(bootstrap.build_bootstrap(_options()))
    by_port = {
        listener.address.socket_address.port_value: listener
        for listener in parsed.static_resources.listeners
    }
    assert set(by_port) == {15090, 15021}
    for port, prefix, cluster in [
        (15090, "/stats/prometheus", "prometheus_stats"),
        (15021, "/healthz/ready", "agent"),
    ]:
        listener = by_port[port]
        assert listener.address.socket_address.address == "127.0.1.5"
        manager = http_connection_manager_pb2.HttpConnectionManager()
        listener.filter_chains[0].filters[0].typed_config.Unpack(manager)
        route = manager.route_config.virtual_hosts[0].routes[0]
        assert (route.match.prefix, route.route.cluster) == (prefix, cluster)
        assert manager.http_filters[-1].name == "envoy.filters.http.router"
    clusters = {c.name: c for c in parsed.static_resources.clusters}
    agent = clusters["agent"].load_assignment.endpoints[0].lb_endpoints[0].endpoint
    assert agent.address.socket_address.port_value == 15020


def test_write_bootstrap_replaces_the_file(tmp_path: pathlib.Path) -> None:
    options = _options(run_dir=tmp_path / "pod")
    bootstrap.write_bootstrap(options, {})
    bootstrap.write_bootstrap(options, {})
    assert sorted(p.name for p in options.run_dir.iterdir()) == ["envoy-rev.json"]
    _parse(json.loads(options.bootstrap_path.read_text()))


def test_envoy_accepts_the_bootstrap(tmp_path: pathlib.Path) -> None:
    # Envoy's own validation, with deprecated features failing (the runtime flag we set).
    options = _options(run_dir=tmp_path, discovery_address="pilot.local:15010")
    bootstrap.write_bootstrap(options, {"ISTIO_META_EXTRA": "x"})
    result = subprocess.run(
        [str(options.envoy_binary), "--mode", "validate", "-c", str(options.bootstrap_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deprecated" not in (result.stdout + result.stderr).lower().replace(
        "fail_on_any_deprecated_feature", ""
    )


def test_with_a_node_agent_envoy_gets_the_sds_cluster_and_tells_pilot(tmp_path) -> None:
    config = bootstrap.build_bootstrap(_options(sds_socket=tmp_path / "sds.sock"), {})
    _parse(config)
    (sds,) = [c for c in config["static_resources"]["clusters"] if c["name"] == "sds-grpc"]
    endpoint = sds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
    assert endpoint["address"]["pipe"]["path"] == str(tmp_path / "sds.sock")
    assert config["node"]["metadata"]["SDS"] == "true"
    assert "SDS" not in bootstrap.build_bootstrap(_options(), {})["node"]["metadata"]


def test_the_pods_istio_locality_label_is_the_nodes_locality() -> None:
    assert not _parse(bootstrap.build_bootstrap(_options())).node.HasField("locality")
    labels = {"app": "reviews", "istio-locality": "region1.zone1.sub1"}
    node = _parse(bootstrap.build_bootstrap(_options(labels=labels))).node
    assert (node.locality.region, node.locality.zone, node.locality.sub_zone) == (
        "region1",
        "zone1",
        "sub1",
    )
    labels = {"app": "reviews", "istio-locality": "region2"}
    node = _parse(bootstrap.build_bootstrap(_options(labels=labels))).node
    assert (node.locality.region, node.locality.zone) == ("region2", "")


def test_dns_capture_relays_the_agents_xds_stream_through_envoy() -> None:
    plain = _parse(bootstrap.build_bootstrap(_options()))
    assert bootstrap.AGENT_XDS_LISTENER not in {ln.name for ln in plain.static_resources.listeners}
    parsed = _parse(bootstrap.build_bootstrap(_options(dns_capture=True)))
    (relay,) = [
        ln for ln in parsed.static_resources.listeners if ln.name == bootstrap.AGENT_XDS_LISTENER
    ]
    assert relay.address.pipe.path == "/tmp/pods/reviews-v1/agent-xds.sock"
    assert relay.address.pipe.mode == 0o600  # the proxy's user only
    proxy = tcp_proxy_pb2.TcpProxy()
    relay.filter_chains[0].filters[0].typed_config.Unpack(proxy)
    assert proxy.cluster == bootstrap.XDS_CLUSTER  # so it carries Envoy's mutual TLS
