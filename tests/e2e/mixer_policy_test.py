"""Mixer in the request path of the running mesh: Bookinfo's policy samples and telemetry.

One real mesh for the module, as `make bookinfo` brings it up: mixs, Pilot with Mixer in its
mesh config (policy checks on), and every sidecar and the gateway running the Mixer wasm
filter in the real Envoy. Policies are applied with istioctl, as a user would, and each test
removes what it added. Answers Mixer gave are cached in the sidecars for their valid
duration (10 s for an allowed check with no rule), so tests wait for a change to show
rather than expecting it at once.
"""

import time
import uuid

import pytest

from tests.e2e import mixertest
from tests.e2e.meshtest import MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(9)
RATINGS_URL = "http://ratings:9080/ratings/0"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET) as mesh:
        mesh.apply("destination-rule-all")
        yield mesh


def until(probe, timeout: float = 25.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {result!r})")
        time.sleep(interval)


def ratings_from(mesh, pod: str) -> tuple[int, str]:
    status, body, _ = mesh.through_sidecar(pod, RATINGS_URL)
    return status, body


def test_policy_checks_let_bookinfo_through(mesh):
    seen = mesh.versions(30)
    assert set(seen) == {"v1", "v2", "v3"}
    # Every inbound sidecar asked Mixer (or its cache) before passing a request on; the
    # filter exports its counters on its 200 ms tick.
    stats = until(
        lambda: (
            (s := mixertest.envoy_stats(mesh, "productpage-v1"))[
                "wasmcustom.http_mixer_filter.inbound.total_check_calls"
            ]
            >= 30
            and s
        ),
        timeout=5,
        what="30 checks counted",
    )
    assert stats["wasmcustom.http_mixer_filter.inbound.total_remote_check_calls"] >= 1
    assert stats["wasmcustom.http_mixer_filter.inbound.check_denied"] == 0


def test_deny_sample_makes_ratings_unavailable_to_reviews_v3_only(mesh):
    mixertest.apply(mesh, "mixer-rule-deny-label")
    try:
        _, body = until(
            lambda: (r := ratings_from(mesh, "reviews-v3"))[0] == 403 and r,
            what="reviews-v3 denied ratings",
        )
        assert body.startswith("PERMISSION_DENIED: ")
        assert "Not allowed" in body
        assert ratings_from(mesh, "reviews-v2")[0] == 200
        # What a user sees: v3 pages without stars, saying ratings are unavailable; v2 with.
        pages = [mesh.page() for _ in range(40)]
        by_version = {}
        for page in pages:
            by_version.setdefault(page.reviews_version, []).append(page)
        assert {"v2", "v3"} <= set(by_version), set(by_version)
        assert all("Ratings service is currently unavailable" in p.body for p in by_version["v3"])
        assert not any(
            "Ratings service is currently unavailable" in p.body for p in by_version["v2"]
        )
        stats = mixertest.envoy_stats(mesh, "ratings-v1")
        assert stats["wasmcustom.http_mixer_filter.inbound.check_denied"] >= 1
    finally:
        mixertest.delete(mesh, "mixer-rule-deny-label")
    until(lambda: ratings_from(mesh, "reviews-v3")[0] == 200, what="reviews-v3 allowed again")


def test_productpage_rate_limit_answers_429_once_spent_and_recovers(mesh):
    mixertest.apply(mesh, "mixer-rule-productpage-ratelimit")
    try:
        # productpage: 2 requests per 5 s from one client address. Until the sidecars' cached
        # answers from before the rule expire, more get through; then the quota bites.
        until(lambda: mesh.page().status == 429, what="productpage rate limited")
        page = mesh.page()
        assert page.status == 429
        assert page.body.startswith("RESOURCE_EXHAUSTED: ")
        # After a whole window with no request the quota is back. The sidecar's quota cache
        # (Istio's prefetch) answers from units Mixer granted it and refills in the
        # background, so the first request after an idle window may be refused once, as in
        # Istio; then two pass, then the quota is spent again.
        for _ in range(2):
            time.sleep(5.5)
            statuses = [mesh.page().status for _ in range(8)]
            assert 200 in statuses, statuses
            assert statuses.count(200) <= 3, statuses
            assert statuses[-3:] == [429, 429, 429], statuses
        # Only productpage is bound to the quota: reviews still answer its own callers.
        assert mesh.through_sidecar("productpage-v1", "http://reviews:9080/reviews/0")[0] == 200
    finally:
        mixertest.delete(mesh, "mixer-rule-productpage-ratelimit")
    until(
        lambda: all(mesh.page().status == 200 for _ in range(5)), what="no rate limit after delete"
    )


def test_standard_metrics_count_the_real_requests_with_their_labels(mesh):
    destination = {
        "reporter": "destination",
        "source_app": "istio-ingressgateway",
        "source_workload": "istio-ingressgateway",
        "source_workload_namespace": "istio-system",
        "source_principal": "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
        "destination_app": "productpage",
        "destination_version": "v1",
        "destination_workload": "productpage-v1",
        "destination_workload_namespace": "default",
        "destination_service": "productpage.default.svc.cluster.local",
        "destination_service_name": "productpage",
        "destination_service_namespace": "default",
        "destination_principal": "cluster.local/ns/default/sa/bookinfo-productpage",
        "request_protocol": "http",
        "response_code": "200",
        "connection_security_policy": "mutual_tls",
    }
    source = {
        **destination,
        "reporter": "source",
        "source_principal": "unknown",  # the client reports; only the server sees the peer
        "connection_security_policy": "unknown",
    }
    not_found = {
        "reporter": "source",
        "source_workload": "istio-ingressgateway",
        "destination_service": "unknown",
        "response_code": "404",
    }
    name = "istio_requests_total"
    before = {
        key: mixertest.settled_metric(mesh, name, labels)
        for key, labels in (("dst", destination), ("src", source), ("404", not_found))
    }
    pages = 7
    for _ in range(pages):
        assert mesh.page().status == 200
    assert mesh.page(path="/not-routed").status == 404
    assert (
        mixertest.wait_metric(mesh, name, destination, before["dst"] + pages)
        == before["dst"] + pages
    )
    assert mixertest.wait_metric(mesh, name, source, before["src"] + pages) == before["src"] + pages
    assert mixertest.wait_metric(mesh, name, not_found, before["404"] + 1) == before["404"] + 1
    # The product page's own calls, seen from both ends.
    details = {
        "source_workload": "productpage-v1",
        "destination_workload": "details-v1",
        "destination_service": "details.default.svc.cluster.local",
        "response_code": "200",
    }
    assert mixertest.metric(mesh, name, {**details, "reporter": "destination"}) >= pages
    assert mixertest.metric(mesh, name, {**details, "reporter": "source"}) >= pages
    time.sleep(1.5)  # nothing is counted twice once the batches are in
    assert mixertest.metric(mesh, name, destination) == before["dst"] + pages
    latency = mixertest.metric(
        mesh, "istio_request_duration_seconds_count", {**destination, "response_code": "200"}
    )
    assert latency >= pages


def test_the_access_log_gets_a_line_per_request_from_each_side(mesh):
    tokens = [uuid.uuid4().hex for _ in range(5)]
    for token in tokens:
        assert mesh.page(path=f"/productpage?probe={token}").status == 200

    def lines():
        entries = [e for e in mixertest.access_log(mesh) if "probe=" in e.get("url", "")]
        return {
            token: sorted(e["reporter"] for e in entries if e["url"].endswith(token))
            for token in tokens
        }

    until(
        lambda: all(v == ["destination", "source"] for v in lines().values()),
        timeout=10,
        what="two access log lines per request",
    )
    entry = next(
        e
        for e in mixertest.access_log(mesh)
        if e.get("url", "").endswith(tokens[0]) and e["reporter"] == "destination"
    )
    assert entry["method"] == "GET"
    assert entry["responseCode"] == 200
    assert entry["sourceWorkload"] == "istio-ingressgateway"
    assert entry["destinationWorkload"] == "productpage-v1"
    assert entry["destinationServiceHost"] == "productpage.default.svc.cluster.local"
    assert entry["connection_security_policy"] == "mutual_tls"


# Last in the module: a listchecker's answer is valid for its cachingInterval (300 s by
# default, as in Istio), so ratings' sidecar keeps denying reviews v3 that long after the
# rule is deleted.
def test_whitelist_sample_lets_only_v1_and_v2_call_ratings(mesh):
    mixertest.apply(mesh, "mixer-rule-deny-whitelist")
    try:
        _, body = until(
            lambda: (r := ratings_from(mesh, "reviews-v3"))[0] == 403 and r,
            what="reviews-v3 not whitelisted",
        )
        assert body.startswith("PERMISSION_DENIED: ")
        assert "v3 is not whitelisted" in body
        assert ratings_from(mesh, "reviews-v2")[0] == 200
        assert ratings_from(mesh, "reviews-v1")[0] == 200
    finally:
        mixertest.delete(mesh, "mixer-rule-deny-whitelist")
