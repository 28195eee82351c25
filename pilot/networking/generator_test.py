import dataclasses

from google.protobuf import json_format

from pilot.networking import generator, names
from pilot.networking.testing import FakeProxy, bookinfo_push, sidecar
from pkg.config import loader

ROUTE_SAMPLES = ["destination-rule-all", "bookinfo-gateway"]


def _as_dicts(resources):
    return {
        name: json_format.MessageToDict(msg, preserving_proto_field_name=True)
        for name, msg in resources
    }


def test_sidecar_clusters_follow_istio_names_and_destination_rule_subsets():
    push = bookinfo_push(*ROUTE_SAMPLES)
    clusters = _as_dicts(generator.build_clusters(sidecar("productpage-v1"), push, []))
    assert "outbound|9080||reviews.default.svc.cluster.local" in clusters
    for subset in ("v1", "v2", "v3"):
        cluster = clusters[f"outbound|9080|{subset}|reviews.default.svc.cluster.local"]
        assert cluster["type"] == "EDS"
        assert cluster["eds_cluster_config"]["service_name"] == cluster["name"]
    # The local app is reached through an inbound cluster; the gateway gets none.
    assert clusters["inbound|9080||"]["load_assignment"]["endpoints"][0]["lb_endpoints"][0][
        "endpoint"
    ]["address"]["socket_address"] == {"address": "127.0.1.2", "port_value": 9080}
    assert names.BLACKHOLE_CLUSTER in clusters


def test_sidecar_listeners_are_the_http_proxy_and_the_inbound_port():
    push = bookinfo_push()
    listeners = _as_dicts(generator.build_listeners(sidecar("reviews-v2"), push, []))
    assert set(listeners) == {"virtualOutbound", "virtualInbound"}
    assert listeners["virtualOutbound"]["address"]["socket_address"] == {
        "address": "127.0.1.5",
        "port_value": 15001,
    }
    assert listeners["virtualInbound"]["address"]["socket_address"]["port_value"] == 15006


def test_route_table_names_a_service_every_way_a_caller_may():
    push = bookinfo_push()
    (route,) = _as_dicts(
        generator.build_routes(sidecar("productpage-v1"), push, ["http_proxy"])
    ).values()
    reviews = next(
        v for v in route["virtual_hosts"] if v["name"] == "reviews.default.svc.cluster.local:9080"
    )
    for domain in (
        "reviews",
        "reviews:9080",
        "reviews.default",
        "reviews.default.svc.cluster.local:9080",
    ):
        assert domain in reviews["domains"]
    assert (
        reviews["routes"][0]["route"]["cluster"]
        == "outbound|9080||reviews.default.svc.cluster.local"
    )
    assert route["virtual_hosts"][-1]["name"] == "block_all"


def test_test_v2_routes_jason_to_v2_by_header():
    push = bookinfo_push(
        *ROUTE_SAMPLES, "virtual-service-all-v1", "virtual-service-reviews-test-v2"
    )
    (route,) = _as_dicts(generator.build_routes(sidecar("productpage-v1"), push, [])).values()
    reviews = next(v for v in route["virtual_hosts"] if v["name"].startswith("reviews."))
    first, second = reviews["routes"]
    assert first["match"]["headers"] == [{"name": "end-user", "string_match": {"exact": "jason"}}]
    assert first["route"]["cluster"] == "outbound|9080|v2|reviews.default.svc.cluster.local"
    assert second["route"]["cluster"] == "outbound|9080|v1|reviews.default.svc.cluster.local"


def test_weighted_split_and_fault_injection():
    push = bookinfo_push(
        *ROUTE_SAMPLES, "virtual-service-reviews-80-20", "virtual-service-ratings-test-delay"
    )
    (route,) = _as_dicts(generator.build_routes(sidecar("reviews-v2"), push, [])).values()
    reviews = next(v for v in route["virtual_hosts"] if v["name"].startswith("reviews."))
    weights = {
        c["name"].split("|")[2]: c["weight"]
        for c in reviews["routes"][0]["route"]["weighted_clusters"]["clusters"]
    }
    assert weights == {"v1": 80, "v2": 20}
    ratings = next(v for v in route["virtual_hosts"] if v["name"].startswith("ratings."))
    fault = ratings["routes"][0]["typed_per_filter_config"]["envoy.filters.http.fault"]
    assert fault["delay"]["fixed_delay"] == "7s"
    assert fault["delay"]["percentage"] == {"numerator": 1000000, "denominator": "MILLION"}


def test_rewrite_redirect_retries_timeout_and_method_match():
    (vs,) = loader.load_text(
        """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: details}
spec:
  hosts: [details]
  http:
  - match: [{uri: {prefix: /old}, method: {exact: GET}, queryParams: {v: {regex: "[0-9]+"}}}]
    redirect: {uri: /new, redirectCode: 308}
  - match: [{uri: {regex: "/api/.*"}}]
    rewrite: {uri: /details/, authority: details.internal}
    timeout: 2s
    retries: {attempts: 3, perTryTimeout: 500ms, retryOn: "gateway-error,503"}
    route: [{destination: {host: details}}]
""",
        source="test",
    )
    push = bookinfo_push(extra=[vs])
    (route,) = _as_dicts(generator.build_routes(sidecar("productpage-v1"), push, [])).values()
    details = next(v for v in route["virtual_hosts"] if v["name"].startswith("details."))
    redirect, rewrite = details["routes"]
    assert redirect["redirect"] == {"path_redirect": "/new", "response_code": "PERMANENT_REDIRECT"}
    assert {"name": ":method", "string_match": {"exact": "GET"}} in redirect["match"]["headers"]
    assert redirect["match"]["query_parameters"] == [
        {"name": "v", "string_match": {"safe_regex": {"regex": "[0-9]+"}}}
    ]
    action = rewrite["route"]
    assert rewrite["match"]["safe_regex"] == {"regex": "/api/.*"}
    assert action["prefix_rewrite"] == "/details/"
    assert action["host_rewrite_literal"] == "details.internal"
    assert action["timeout"] == "2s"
    assert action["retry_policy"]["num_retries"] == 3
    assert action["retry_policy"]["per_try_timeout"] == "0.500s"
    assert action["retry_policy"]["retry_on"] == "gateway-error,retriable-status-codes"
    assert action["retry_policy"]["retriable_status_codes"] == [503]


def test_endpoints_go_to_the_sidecar_inbound_port_and_follow_subsets():
    push = bookinfo_push(*ROUTE_SAMPLES)
    wanted = [
        "outbound|9080|v3|reviews.default.svc.cluster.local",
        "outbound|9080||reviews.default.svc.cluster.local",
    ]
    assignments = _as_dicts(generator.build_endpoints(sidecar("productpage-v1"), push, wanted))
    v3 = assignments[wanted[0]]["endpoints"][0]["lb_endpoints"]
    assert [e["endpoint"]["address"]["socket_address"] for e in v3] == [
        {"address": "127.0.1.6", "port_value": 15006}
    ]
    assert len(assignments[wanted[1]]["endpoints"][0]["lb_endpoints"]) == 3


def test_a_captured_workload_is_reached_at_the_apps_own_port():
    # Its iptables hands the connection to virtualInbound; 15006 itself is blackholed there.
    push = bookinfo_push(*ROUTE_SAMPLES)
    endpoints = {
        key: tuple(dataclasses.replace(e, captured=True) for e in found)
        for key, found in push.index.endpoints.items()
    }
    captured = dataclasses.replace(push, index=dataclasses.replace(push.index, endpoints=endpoints))
    name = "outbound|9080|v3|reviews.default.svc.cluster.local"
    assignments = _as_dicts(generator.build_endpoints(sidecar("productpage-v1"), captured, [name]))
    (v3,) = assignments[name]["endpoints"][0]["lb_endpoints"]
    assert v3["endpoint"]["address"]["socket_address"] == {
        "address": "127.0.1.6",
        "port_value": 9080,
    }


def test_gateway_gets_a_listener_and_routes_from_the_bound_virtual_service():
    push = bookinfo_push(*ROUTE_SAMPLES)
    gateway = FakeProxy("router", "127.0.1.1", "istio-system", {"istio": "ingressgateway"})
    listeners = _as_dicts(generator.build_listeners(gateway, push, []))
    assert list(listeners) == ["0.0.0.0_8080"]
    (route,) = _as_dicts(generator.build_routes(gateway, push, ["http.8080"])).values()
    (host,) = route["virtual_hosts"]
    assert host["domains"] == ["*"]
    paths = [r["match"].get("path") or r["match"].get("prefix") for r in host["routes"]]
    assert paths == ["/productpage", "/static", "/login", "/logout", "/api/v1/products"]
    assert {r["route"]["cluster"] for r in host["routes"]} == {
        "outbound|9080||productpage.default.svc.cluster.local"
    }


def test_sidecar_resource_narrows_what_a_proxy_sees():
    (scope,) = loader.load_text(
        """
apiVersion: networking.istio.io/v1alpha3
kind: Sidecar
metadata: {name: default}
spec:
  egress: [{hosts: ["./ratings.default.svc.cluster.local"]}]
""",
        source="test",
    )
    push = bookinfo_push(extra=[scope])
    clusters = _as_dicts(generator.build_clusters(sidecar("reviews-v2"), push, []))
    outbound = {n for n in clusters if n.startswith("outbound")}
    assert outbound == {"outbound|9080||ratings.default.svc.cluster.local"}


def test_proxies_that_would_get_the_same_config_share_it_within_a_push():
    push = bookinfo_push(*ROUTE_SAMPLES)
    a, b = sidecar("reviews-v1"), sidecar("reviews-v2")
    shared_a = {n: m for n, m in generator.build_clusters(a, push, []) if n.startswith("outbound")}
    shared_b = {n: m for n, m in generator.build_clusters(b, push, []) if n.startswith("outbound")}
    assert all(shared_a[n] is shared_b[n] for n in shared_a)
    assert generator.build_routes(a, push, [])[0][1] is generator.build_routes(b, push, [])[0][1]
    # A new push builds anew: nothing generated from old config survives a change.
    assert (
        generator.build_routes(a, bookinfo_push(*ROUTE_SAMPLES), [])[0][1]
        is not generator.build_routes(a, push, [])[0][1]
    )


def test_routes_matching_source_labels_are_built_per_workload():
    (vs,) = loader.load_text(
        """
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: ratings}
spec:
  hosts: [ratings]
  http:
  - match: [{sourceLabels: {app: reviews, version: v2}}]
    fault: {abort: {httpStatus: 503, percentage: {value: 100}}}
    route: [{destination: {host: ratings, subset: v1}}]
  - route: [{destination: {host: ratings, subset: v1}}]
""",
        source="test",
    )
    push = bookinfo_push(*ROUTE_SAMPLES, extra=[vs])

    def ratings_routes(pod):
        (route,) = _as_dicts(generator.build_routes(sidecar(pod), push, [])).values()
        return next(v for v in route["virtual_hosts"] if v["name"].startswith("ratings."))["routes"]

    assert len(ratings_routes("reviews-v2")) == 2
    assert len(ratings_routes("reviews-v3")) == 1


def test_endpoints_are_built_once_per_push_and_cluster():
    push = bookinfo_push(*ROUTE_SAMPLES)
    names = ["outbound|9080|v1|reviews.default.svc.cluster.local"]
    first = generator.build_endpoints(sidecar("productpage-v1"), push, names)
    assert generator.build_endpoints(sidecar("ratings-v1"), push, names)[0][1] is first[0][1]
