"""Istio's resilience tasks with real traffic: circuit breaking, outlier detection, mirroring,
retries and per-try timeouts, consistent-hash load balancing.

One fresh local Kubernetes platform for the module, Istio's httpbin (v1 and the mirroring
task's v2) and fortio applied with kubectl, every pod with its real sidecar. Each test applies
the task's YAML with istioctl, makes fortio's pod send real requests through its sidecar, and
asserts on counts that the feature changes: response codes, what each httpbin pod served
(its own count per request id), and the counters of fortio's Envoy.
"""

from __future__ import annotations

import collections
import concurrent.futures
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pkg.testing.wait import poll
from tests.e2e.httpbintest import HTTPBIN_V1_CLUSTER, HttpbinMesh
from tests.e2e.meshtest import MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(50)
# The platform alone, pods on loopback addresses (traffic_resilience_netns_test.py runs the
# same tests with pods in network namespaces).
PLATFORM: dict[str, Any] = {"platform": "kube", "bookinfo": False, "mixer": False}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpbinMesh]:
    run_dir = tmp_path_factory.mktemp("resilience-mesh")
    with MeshUnderTest(run_dir, SUBNET, **PLATFORM) as under_test:
        httpbin = HttpbinMesh(under_test, tmp_path_factory.mktemp("kubectl"))
        try:
            httpbin.deploy()
            yield httpbin
        finally:
            for log in sorted((run_dir / "pods").glob("default_*/logs/*.log")):
                print(f"--- {log.parent.parent.name}/{log.name} ---")
                print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")


@pytest.fixture(autouse=True)
def healthy(mesh: HttpbinMesh) -> Iterator[None]:
    mesh.clear_faults()
    yield
    mesh.clear_faults()


def test_without_a_rule_requests_spread_over_both_httpbins(mesh: HttpbinMesh) -> None:
    before = mesh.totals()
    assert mesh.load(connections=2, requests=40) == {200: 40}
    after = mesh.totals()
    spread = {v: after[v] - before[v] for v in after}
    assert sum(spread.values()) == 40
    assert min(spread.values()) > 0, spread


def test_circuit_breaker_answers_overflow_with_503_uo(mesh: HttpbinMesh) -> None:
    """Istio's task: more concurrent callers than maxConnections 1 and one pending request
    allow. Envoy keeps one connection per endpoint even so: with httpbin's two pods, five
    callers leave two without a place at any moment."""
    assert mesh.load(connections=5, requests=60, path="/delay/0.05") == {200: 60}  # no rule
    overflow_before = mesh.stat("upstream_rq_pending_overflow")
    mesh.apply("circuit-breaking")
    try:
        codes = mesh.load(connections=5, requests=60, path="/delay/0.05")
        print("circuit breaking, 5 connections:", dict(codes))
        assert set(codes) == {200, 503}, codes
        assert codes[503] >= 10
        # Every 503 was the sidecar's own overflow answer, counted as Istio's task reads it.
        assert mesh.stat("upstream_rq_pending_overflow") - overflow_before == codes[503]
        # ... and logged by the sidecar with Envoy's flag for it, UO (flushed within a second).
        poll(
            lambda: mesh.proxy_log().count('"GET /delay/0.05 HTTP/1.1" 503 UO ') == codes[503],
            "one UO line per overflow in the access log",
            10,
        )
        # Six at once, for three places (a connection per pod, one pending): the overflow
        # answers carry Envoy's header.
        answers = _concurrent_calls(mesh, 6, "/delay/0.5")
        overflowed = [headers for status, headers in answers if status == 503]
        assert 1 <= len(overflowed) <= 5, answers
        assert all(h.get("x-envoy-overloaded") == "true" for h in overflowed), overflowed
    finally:
        mesh.delete("circuit-breaking")


def _concurrent_calls(mesh: HttpbinMesh, count: int, path: str) -> list[tuple[int, dict]]:
    """`count` requests at once, each on its own connection to fortio's sidecar."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        answers = list(pool.map(lambda _: mesh.call(path), range(count)))
    return [(status, {k.lower(): v for k, v in headers.items()}) for status, _, headers in answers]


def test_an_endpoint_answering_5xx_is_ejected_and_comes_back(mesh: HttpbinMesh) -> None:
    mesh.apply("outlier-detection")
    try:
        ejections = mesh.stat("outlier_detection.ejections_enforced_total")
        v2 = mesh.httpbin_ips["v2"]
        mesh.fault("v2", status=500)
        # Balanced over both pods, v2 fails twice in a row and is ejected at once.
        codes = mesh.load(requests=20)
        assert 2 <= codes[500] <= 3, codes
        assert codes[200] == 20 - codes[500]
        assert mesh.stat("outlier_detection.ejections_enforced_total") == ejections + 1
        assert mesh.stat("outlier_detection.ejections_active") == 1
        assert mesh.endpoints()[v2] == "failed_outlier_check"
        # Ejected, it gets nothing: every request reaches v1 (without ejection, half would
        # have gone to v2 and failed).
        before = mesh.totals()
        assert mesh.load(requests=20) == {200: 20}
        after = mesh.totals()
        assert (after["v1"] - before["v1"], after["v2"] - before["v2"]) == (20, 0)
        # Healthy again: after the ejection time (5s) Envoy sends it requests again.
        mesh.fault("v2")
        poll(lambda: mesh.endpoints()[v2] == "healthy", "v2 back after its ejection", 15)
        assert mesh.stat("outlier_detection.ejections_active") == 0
        before = mesh.totals()
        assert mesh.load(requests=20) == {200: 20}
        assert mesh.totals()["v2"] > before["v2"]
    finally:
        mesh.delete("outlier-detection")


def test_mirroring_sends_v2_a_copy_of_each_request_and_ignores_its_answer(
    mesh: HttpbinMesh,
) -> None:
    """Istio's mirroring task: first all traffic to v1, then the same with a mirror to v2."""
    mesh.apply("subsets")
    try:
        before = mesh.totals()
        assert mesh.load("/headers", requests=10) == {200: 10}
        after = mesh.totals()
        assert (after["v1"] - before["v1"], after["v2"] - before["v2"]) == (10, 0)

        mesh.apply("mirroring")
        before = mesh.totals()
        assert mesh.load("/headers", requests=10) == {200: 10}
        # The copies are sent beside the request, not before its answer: wait for them.
        poll(lambda: mesh.totals()["v2"] - before["v2"] == 10, "v2 saw every request", 10)
        assert mesh.totals()["v1"] - before["v1"] == 10
        # The caller's answer is v1's (v2 names its pod, v1 does not use its real hostname).
        status, body, _ = mesh.call("/hostname")
        assert (status, json.loads(body)) == (200, {"hostname": "go-httpbin"})

        # v2 failing, and slowly: callers see neither.
        mesh.fault("v2", status=500, delay=1.0)
        before = mesh.totals()
        for _ in range(5):
            started = time.monotonic()
            status, _, _ = mesh.call("/get")
            assert status == 200
            assert time.monotonic() - started < 0.8
        poll(lambda: mesh.totals()["v2"] - before["v2"] == 5, "v2 saw the copies", 10)
        # Copies carry the host with `-shadow` appended, as Envoy marks them.
        shadowed = mesh.served("v2")["by_host"]
        assert shadowed.get("httpbin-shadow:8000") == 10 + 1 + 5, shadowed  # every copy
        assert not any("shadow" in host for host in mesh.served("v1")["by_host"])

        # mirrorPercentage 50: about half of 60 requests copied (binomial: outside 15-45
        # has odds below 1e-4).
        mesh.fault("v2")
        mesh.apply("mirroring-50")
        before = mesh.totals()
        assert mesh.load(requests=60) == {200: 60}
        time.sleep(0.5)  # the last copies
        copied = mesh.totals()["v2"] - before["v2"]
        assert 15 <= copied <= 45, copied
    finally:
        mesh.delete("subsets")  # the DestinationRule and the VirtualService, both `httpbin`


def _attempts(mesh: HttpbinMesh, version: str, before: dict[str, int]) -> list[int]:
    """How many tries of each request `version` saw since `before` (its count per id)."""
    now = mesh.served(version)["by_request_id"]
    return [n - before.get(rid, 0) for rid, n in now.items() if n != before.get(rid, 0)]


def test_retries_turn_a_flaky_endpoint_into_successes(mesh: HttpbinMesh) -> None:
    mesh.apply("subsets")
    try:
        # v1 fails the first two tries of every request with a 500, which Istio's default
        # retry policy (connect failures, 503) does not retry.
        mesh.fault("v1", status=500, first=2)
        seen = mesh.served("v1")["by_request_id"]
        assert mesh.load(requests=10) == {500: 10}
        assert _attempts(mesh, "v1", seen) == [1] * 10

        mesh.apply("retries")  # attempts: 3, retryOn: 5xx, perTryTimeout: 500ms
        seen = mesh.served("v1")["by_request_id"]
        assert mesh.load(requests=10) == {200: 10}
        assert _attempts(mesh, "v1", seen) == [3] * 10  # two failures, then the success

        # Failing every try: 1 + 3 attempts, then the caller gets the last answer.
        mesh.fault("v1", status=500)
        seen = mesh.served("v1")["by_request_id"]
        assert mesh.load(requests=5) == {500: 5}
        assert _attempts(mesh, "v1", seen) == [4] * 5

        # A first try slower than perTryTimeout is cut at 500ms and tried again.
        mesh.fault("v1", delay=1.5, first=1)
        seen = mesh.served("v1")["by_request_id"]
        for _ in range(3):
            started = time.monotonic()
            status, _, _ = mesh.call("/get")
            elapsed = time.monotonic() - started
            assert status == 200
            assert 0.5 <= elapsed < 1.4, elapsed  # the cut try, then a fast one
        assert _attempts(mesh, "v1", seen) == [2] * 3
        assert mesh.stat("upstream_rq_per_try_timeout", HTTPBIN_V1_CLUSTER) >= 3
    finally:
        mesh.delete("subsets")


def _served_by(mesh: HttpbinMesh, headers: dict[str, str], requests: int = 8) -> dict[str, int]:
    before = mesh.totals()
    assert mesh.load(requests=requests, headers=headers) == {200: requests}
    after = mesh.totals()
    return {v: after[v] - before[v] for v in after if after[v] > before[v]}


@pytest.mark.parametrize(
    ("task", "key"),
    [("consistent-hash", lambda user: {"x-user": user}), ("consistent-hash-cookie", None)],
    ids=["httpHeaderName", "httpCookie"],
)
def test_consistent_hash_keeps_each_user_on_one_pod(mesh: HttpbinMesh, task, key) -> None:
    def headers(user: str) -> dict[str, str]:
        return key(user) if key else {"Cookie": f"user={user}"}

    mesh.apply(task)
    try:
        chosen: collections.Counter[str] = collections.Counter()
        for number in range(12):
            served = _served_by(mesh, headers(f"user-{number}"))
            assert list(served.values()) == [8], served  # all of one user's on one pod
            chosen[next(iter(served))] += 1
        assert set(chosen) == {"v1", "v2"}, chosen  # different users spread over both
    finally:
        mesh.delete(task)
    # Without the rule, one user's requests spread again.
    assert len(_served_by(mesh, headers("user-0"), requests=20)) == 2
