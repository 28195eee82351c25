"""The graph from Prometheus' answers: rates, shares, errors, latency, mTLS, idle workloads."""

from tools.meshpage.graph import Workload, build_graph, queries


def sample(value, **labels):
    return {"metric": labels, "value": [1700000000.0, str(value)]}


def edge(src, src_v, dst, dst_v, value, code="200", policy="mutual_tls"):
    return sample(
        value,
        source_app=src,
        source_version=src_v,
        destination_app=dst,
        destination_version=dst_v,
        response_code=code,
        connection_security_policy=policy,
    )


RESULTS = {
    "requests": [
        edge("istio-ingressgateway", "unknown", "productpage", "v1", 10.0, policy="none"),
        edge("productpage", "v1", "reviews", "v1", 8.0),
        edge("productpage", "v1", "reviews", "v2", 1.5),
        edge("productpage", "v1", "reviews", "v2", 0.5, code="503"),
        edge("reviews", "v2", "ratings", "v1", 2.0),
    ],
    "p50": [
        sample(
            0.004,
            source_app="productpage",
            source_version="v1",
            destination_app="reviews",
            destination_version="v1",
        ),
        sample(
            "NaN",
            source_app="reviews",
            source_version="v2",
            destination_app="ratings",
            destination_version="v1",
        ),
    ],
    "p99": [
        sample(
            0.020,
            source_app="productpage",
            source_version="v1",
            destination_app="reviews",
            destination_version="v1",
        ),
    ],
}


def test_queries_count_each_request_once_at_its_destination():
    q = queries("30s")
    assert 'istio_requests_total{reporter="destination"}[30s]' in q["requests"]
    assert q["p99"].startswith("histogram_quantile(0.99, sum by (le,")


def test_edges_carry_rate_share_errors_latency_and_mtls():
    graph = build_graph(RESULTS, [Workload("reviews", "v3"), Workload("details", "v1")])
    edges = {e["id"]: e for e in graph["edges"]}
    assert set(edges) == {
        "istio-ingressgateway->productpage-v1",
        "productpage-v1->reviews-v1",
        "productpage-v1->reviews-v2",
        "reviews-v2->ratings-v1",
    }
    to_v1, to_v2 = edges["productpage-v1->reviews-v1"], edges["productpage-v1->reviews-v2"]
    assert (to_v1["rps"], to_v1["percent"], to_v2["percent"]) == (8.0, 80.0, 20.0)
    assert to_v2["error_rate"] == 0.25
    assert to_v1["error_rate"] == 0.0
    assert (to_v1["p50_ms"], to_v1["p99_ms"]) == (4.0, 20.0)
    assert edges["reviews-v2->ratings-v1"]["p50_ms"] is None  # NaN: no requests in the window
    assert to_v1["mtls"]
    assert not edges["istio-ingressgateway->productpage-v1"]["mtls"]


def test_nodes_are_versions_inside_app_boxes_and_idle_workloads_are_drawn():
    graph = build_graph(RESULTS, [Workload("reviews", "v3"), Workload("details", "v1")])
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["app:reviews"]["kind"] == "app"
    assert nodes["reviews-v3"]["parent"] == "app:reviews"
    assert nodes["reviews-v3"]["rps_in"] == 0.0
    assert nodes["reviews-v2"]["error_rate"] == 0.25
    assert nodes["details-v1"]["rps_in"] == 0.0
    # The gateway has no version: a plain node named after its app, outside any box.
    assert nodes["istio-ingressgateway"]["parent"] is None
    assert nodes["istio-ingressgateway"]["rps_out"] == 10.0


def test_an_idle_edge_keeps_its_mtls_mark():
    graph = build_graph({"requests": [edge("reviews", "v2", "ratings", "v1", 0.0)]})
    (only,) = graph["edges"]
    assert only["rps"] == 0.0
    assert only["mtls"]


def test_broken_samples_are_skipped_not_fatal():
    graph = build_graph({"requests": [{"metric": {}}, {"value": [1, "x"]}], "p50": [{}]})
    assert graph["edges"] == []
    assert graph["nodes"] == []
