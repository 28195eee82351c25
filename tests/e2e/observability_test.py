"""Observability of a running mesh: Prometheus really scrapes, a trace has every hop, and the
mesh page in a real headless Chromium shows Bookinfo's graph and follows a route change.

One mesh for the module, as `make bookinfo` starts it (Mixer filter in every proxy, mutual
TLS, Prometheus scraping every second, Zipkin, the mesh page), on its own loopback subnet.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import re
import secrets
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pkg.testing.wait import poll
from tests.e2e.meshtest import MeshUnderTest, loopback_subnet
from tools.local import main, observability
from tools.local.topology import ROOT
from tools.meshpage.browser import Browser

SUBNET = loopback_subnet(17)
BOOKINFO_WORKLOADS = {
    "istio-ingressgateway",
    "productpage-v1",
    "details-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> Iterator[MeshUnderTest]:
    with MeshUnderTest(
        tmp_path_factory.mktemp("mesh"),
        SUBNET,
        observability=True,
        scrape_interval="1s",
        graph_window="10s",
    ) as mesh:
        yield mesh


@pytest.fixture(scope="module")
def artifacts() -> pathlib.Path:
    """Where screenshots are kept: Bazel's undeclared outputs, else run/test-artifacts/."""
    outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR")
    path = pathlib.Path(outputs) if outputs else ROOT / "run" / "test-artifacts" / "observability"
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_json(url: str, params: dict[str, str] | None = None) -> Any:
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def prometheus(mesh: MeshUnderTest, query: str) -> list[dict[str, Any]]:
    body = get_json(f"{observability.prometheus_url(mesh.topology)}/api/v1/query", {"query": query})
    assert body["status"] == "success", body
    return body["data"]["result"]


def value(results: list[dict[str, Any]]) -> float:
    return sum(float(r["value"][1]) for r in results)


class Traffic:
    """Product pages through the gateway from a thread, bounded in rate and time."""

    def __init__(self, mesh: MeshUnderTest, per_second: float = 6.0, limit: float = 180.0):
        self._mesh = mesh
        self._pause = 1.0 / per_second
        self._limit = limit
        self._stop = threading.Event()
        self.statuses: list[int] = []
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        ends = time.monotonic() + self._limit
        while not self._stop.is_set() and time.monotonic() < ends:
            self.statuses.append(self._mesh.page().status)
            self._stop.wait(self._pause)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=40)


def test_prometheus_scrapes_every_target_and_istio_requests_total(mesh):
    pages = [mesh.page() for _ in range(20)]
    assert {p.status for p in pages} == {200}
    jobs = {"pilot", "citadel", "nodeagent", "istio-mesh", "envoy-stats", "kubernetes-pods"}
    up = poll(
        lambda: (
            {
                r["metric"]["job"]: int(float(r["value"][1]))
                for r in prometheus(mesh, "sum by (job) (up)")
                if r["metric"]["job"] in jobs
            }
            == {
                "pilot": 1,
                "citadel": 1,
                "nodeagent": 1,
                "istio-mesh": 1,
                "envoy-stats": 7,
                "kubernetes-pods": 7,
            }
        ),
        "every target up",
    )
    assert up
    # Mixer's standard metric, reported by productpage's sidecar for the gateway's calls.
    query = (
        'sum(istio_requests_total{reporter="destination",source_app="istio-ingressgateway",'
        'destination_app="productpage",response_code="200",connection_security_policy="mutual_tls"})'
    )
    poll(lambda: value(prometheus(mesh, query)) >= 20, "istio_requests_total for the pages")
    latency = prometheus(
        mesh, 'sum(istio_request_duration_seconds_count{destination_app="details"})'
    )
    assert value(latency) >= 20
    # Every Envoy's own stats (15090), and the same through each agent's merged endpoint
    # (15020), which also carries the agent's and productpage's own metrics.
    assert value(prometheus(mesh, 'count(envoy_server_live{job="envoy-stats"} == 1)')) == 7
    assert value(prometheus(mesh, 'count(envoy_server_live{job="kubernetes-pods"} == 1)')) == 7
    assert value(prometheus(mesh, 'count(istio_agent_scrapes_total{type="envoy"})')) == 7
    poll(
        lambda: (
            value(
                prometheus(
                    mesh,
                    'sum(request_result_total{job="kubernetes-pods",destination_app="details"})',
                )
            )
            >= 20
        ),
        "productpage's own request_result, merged by its agent",
    )
    # The control plane's own metrics, in Istio's names.
    assert value(prometheus(mesh, 'pilot_xds{job="pilot"}')) == 7
    assert value(prometheus(mesh, 'sum(pilot_xds_pushes{job="pilot",type="cds"})')) >= 7
    assert value(prometheus(mesh, 'pilot_proxy_convergence_time_count{job="pilot"}')) >= 0
    # One certificate per identity: Bookinfo's four service accounts, the gateway's, Pilot's.
    assert value(prometheus(mesh, "citadel_server_success_cert_issuance_count")) >= 6
    assert value(prometheus(mesh, 'total_active_connections{job="nodeagent"}')) >= 7


def test_a_product_page_trace_has_every_hop(mesh):
    mesh.apply("destination-rule-all", "virtual-service-reviews-v3")  # v3 calls ratings
    # The apply returns on Pilot's first push; the route may come a push later.
    poll(lambda: mesh.page().reviews_version == "v3", "reviews routed to v3")
    trace_id = secrets.token_hex(16)
    request = urllib.request.Request(
        f"http://{mesh.topology.gateway_address}:8080/productpage",
        headers={
            "x-b3-traceid": trace_id,
            "x-b3-spanid": secrets.token_hex(8),
            "x-b3-sampled": "1",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    zipkin = observability.zipkin_url(mesh.topology)

    def spans() -> list[dict[str, Any]]:
        try:
            found = get_json(f"{zipkin}/api/v2/trace/{trace_id}")
        except urllib.error.HTTPError:
            return []
        return found if len(found) >= 8 else []

    trace = poll(spans, "the trace's eight spans", timeout=30)
    hops = sorted(
        (
            s["localEndpoint"]["serviceName"],
            s["kind"],
            s.get("tags", {}).get("upstream_cluster", ""),
        )
        for s in trace
    )
    assert hops == sorted(
        [
            ("details", "SERVER", "inbound|9080||"),
            ("ingressgateway", "CLIENT", "outbound|9080||productpage.default.svc.cluster.local"),
            ("productpage", "CLIENT", "outbound|9080||details.default.svc.cluster.local"),
            ("productpage", "CLIENT", "outbound|9080|v3|reviews.default.svc.cluster.local"),
            ("productpage", "SERVER", "inbound|9080||"),
            ("ratings", "SERVER", "inbound|9080||"),
            ("reviews", "CLIENT", "outbound|9080||ratings.default.svc.cluster.local"),
            ("reviews", "SERVER", "inbound|9080||"),
        ]
    )
    by_id = {s["id"]: s for s in trace}
    assert all(s["traceId"] == trace_id for s in trace)
    for span in trace:
        if span["kind"] == "SERVER":
            # Each server span is the child of the client span that called it.
            parent = by_id[span["parentId"]]
            assert parent["kind"] == "CLIENT"
            assert span["localEndpoint"]["serviceName"] in parent["tags"]["upstream_cluster"] or (
                span["localEndpoint"]["serviceName"] in parent["name"]
            )
    tags = next(s for s in trace if s["localEndpoint"]["serviceName"] == "reviews")["tags"]
    assert tags["istio.canonical_service"] == "reviews"
    assert tags["istio.namespace"] == "default"


def graph_state(browser: Browser) -> Any:
    return browser.evaluate(
        """(() => ({
            nodes: window.meshGraph.nodes("[kind = 'workload']").map(n => n.id()),
            edges: Object.fromEntries(window.meshGraph.edges().map(e => [e.id(), e.data('percent')])),
            rows: [...document.querySelectorAll('#edges tbody tr')].map(r => ({
                source: r.dataset.source, target: r.dataset.target,
                percent: Number(r.dataset.percent), mtls: r.dataset.mtls === 'true'})),
            buttons: [...document.querySelectorAll('#nodes button')].map(b => b.dataset.node),
            updated: document.body.dataset.updated || '',
        }))()"""
    )


def test_the_mesh_page_shows_bookinfo_and_follows_a_route_change(mesh, artifacts):
    mesh.apply("destination-rule-all", "virtual-service-all-v1")
    url = observability.mesh_page_url(mesh.topology)

    profile = pathlib.Path(tempfile.mkdtemp(prefix="chromium-profile-"))

    async def scenario() -> None:
        async with Browser.launch(profile / "profile") as browser:
            await browser.navigate(url)

            async def until(check: Callable[[Any], bool], what: str, timeout: float = 60) -> Any:
                deadline = time.monotonic() + timeout
                state = None
                while time.monotonic() < deadline:
                    state = await graph_state(browser)
                    if check(state):
                        return state
                    await asyncio.sleep(0.5)
                raise AssertionError(f"the page did not show {what} within {timeout}s: {state}")

            all_v1 = {
                "istio-ingressgateway->productpage-v1",
                "productpage-v1->details-v1",
                "productpage-v1->reviews-v1",
            }
            # Only v1 carries traffic once the window holds nothing older than the rule.
            state = await until(
                lambda s: (
                    set(s["nodes"]) >= BOOKINFO_WORKLOADS
                    and {e for e, p in s["edges"].items() if p and p > 0} == all_v1
                    and s["edges"]["productpage-v1->reviews-v1"] == 100.0
                ),
                "Bookinfo with all traffic on v1",
                timeout=90,
            )
            assert set(state["buttons"]) >= BOOKINFO_WORKLOADS
            rows = {(r["source"], r["target"]): r for r in state["rows"]}
            assert rows[("productpage-v1", "reviews-v1")]["percent"] == 100.0
            assert all(r["mtls"] for r in rows.values())  # auto mTLS between every pod
            await browser.screenshot(artifacts / "meshpage-all-v1.png")

            mesh.apply("virtual-service-reviews-80-20")
            updated = state["updated"]
            state = await until(
                lambda s: (
                    s["updated"] != updated
                    and 8.0 <= (s["edges"].get("productpage-v1->reviews-v2") or 0) <= 40.0
                    and (s["edges"].get("productpage-v1->reviews-v1") or 100) <= 92.0
                ),
                "the 80-20 split on the reviews edges",
                timeout=60,
            )
            rows = {(r["source"], r["target"]): r for r in state["rows"]}
            assert (
                rows[("productpage-v1", "reviews-v2")]["percent"]
                == state["edges"]["productpage-v1->reviews-v2"]
            )
            # reviews v2 calls ratings: a new edge.
            await until(lambda s: "reviews-v2->ratings-v1" in s["edges"], "reviews-v2 -> ratings")

            # A click on reviews shows its routes and its recent traces.
            await browser.evaluate(
                "document.querySelector('#nodes button[data-app=reviews]').click()"
            )
            panel = await browser.wait_for(
                """(() => {
                    const p = document.getElementById('details');
                    const routes = [...p.querySelectorAll('.route')].map(r => r.dataset.kind + ' ' + r.dataset.name);
                    const traces = p.querySelectorAll('.trace').length;
                    return p.dataset.app === 'reviews' && traces > 0 ? {routes, traces} : null;
                })()""",
                timeout=30,
                what="the reviews panel with traces",
            )
            assert sorted(panel["routes"]) == ["DestinationRule reviews", "VirtualService reviews"]
            await browser.screenshot(artifacts / "meshpage-80-20.png")
            assert not [line for line in browser.console if line.startswith("uncaught")]

    try:
        with Traffic(mesh) as traffic:
            asyncio.run(asyncio.wait_for(scenario(), 300))
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    assert traffic.statuses
    assert set(traffic.statuses) == {200}
    print(f"screenshots in {artifacts}")


def test_make_bookinfo_says_where_the_graph_prometheus_and_traces_are(mesh):
    lines = main.where(mesh.topology)
    urls = {
        line.split(":", 1)[0]: re.search(r"http://\S+", line).group(0)
        for line in lines
        if line.startswith(("Mesh graph:", "Prometheus:", "Traces:"))
    }
    assert set(urls) == {"Mesh graph", "Prometheus", "Traces"}, lines
    with urllib.request.urlopen(urls["Mesh graph"], timeout=10) as response:
        assert "cytoscape" in response.read().decode()
    up = get_json(f"{urls['Prometheus']}/api/v1/query", {"query": "up"})
    assert up["status"] == "success"
    assert up["data"]["result"]
    assert mesh.page().status == 200
    traces = poll(lambda: get_json(urls["Traces"]), "a product page's trace", timeout=30)
    assert all(
        any(s["localEndpoint"]["serviceName"] == "productpage" for s in trace) for trace in traces
    )


def test_istioctl_dashboards_point_at_what_make_bookinfo_started(mesh):
    for name, url in (
        ("prometheus", observability.prometheus_url(mesh.topology)),
        ("mesh", observability.mesh_page_url(mesh.topology)),
        ("kiali", observability.mesh_page_url(mesh.topology)),
        ("zipkin", f"{observability.zipkin_url(mesh.topology)}/api/v2/services"),
    ):
        assert mesh.istioctl("dashboard", name, "--browser=false").stdout == f"{url}\n"
    services = get_json(f"{observability.zipkin_url(mesh.topology)}/api/v2/services")
    assert {"productpage", "details", "reviews"} <= set(services)
