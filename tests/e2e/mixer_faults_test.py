"""Mixer down or slow, in the running mesh: requests follow policyCheckFailOpen exactly.

A real mesh with policy checks on and policyCheckFailOpen false. mixs is killed (down:
every call is refused at once) or stopped with SIGSTOP (slow: calls hang until the filter's
5 s Check timeout). Failing closed, a request that needs Mixer's answer gets 503 within the
timeout; then Pilot restarts with policyCheckFailOpen true and the same requests are served.
Each report is its own batch here (reportBatchMaxEntries 1), so a stalled Mixer fills the
filter's in-flight limit quickly: reports beyond it are dropped and counted, never queued.
Cached answers stay valid for their valid duration (10 s), so every test first waits until
the sidecars need Mixer again.
"""

import asyncio
import concurrent.futures
import os
import signal
import time
import urllib.request

import pytest

from tests.e2e import mixertest
from tests.e2e.meshtest import MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(10)
CHECK_TIMEOUT = 5.0  # the filter's Mixer call timeout
MAX_IN_FLIGHT = 8  # report batches one filter keeps outstanding (mixerclient's default)
DETAILS_URL = "http://details:9080/details/0"


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with MeshUnderTest(
        tmp_path_factory.mktemp("mesh"),
        SUBNET,
        mesh_config_extra="reportBatchMaxEntries: 1\n",
        heal=False,
    ) as mesh:
        yield mesh


def _process(mesh, name):
    (proc,) = [p for p in mesh.mesh.running() if p.name == name]
    return proc


def _kill(mesh, name):
    proc = _process(mesh, name)
    os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.alive(), f"{name} still alive"


def _first(probe, timeout=20.0, what="condition"):
    """Polls until probe() returns a truthy value, which is returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def _details(mesh):
    """productpage's call to details: details' inbound sidecar Checks it."""
    started = time.monotonic()
    status, body, _ = mesh.through_sidecar("productpage-v1", DETAILS_URL)
    return status, body, time.monotonic() - started


def _details_inbound(mesh):
    """Straight to details' inbound listener: one Check, no client sidecar retrying a 503."""
    address = mesh.topology.pod_address(mesh.topology.pod("details-v1"))
    started = time.monotonic()
    status, body = mixertest.status_of(
        f"http://{address}:15006/details/0", headers={"Host": "details:9080"}
    )
    return status, body, time.monotonic() - started


def _stats(mesh, pod):
    return mixertest.envoy_stats(mesh, pod)


def _counted(mesh, pod, name, at_least=1):
    """The pod's filter statistics once `name` reached `at_least` (they are exported on the
    filter's 200 ms tick)."""
    key = f"wasmcustom.http_mixer_filter.{name}"
    return _first(
        lambda: (s := _stats(mesh, pod)).get(key, 0) >= at_least and s, what=f"{pod} {key}"
    )


def test_mixer_down_fails_closed_with_503(mesh):
    assert mesh.page().status == 200
    _kill(mesh, "mixs")
    try:
        # Cached answers carry requests until they expire; then each needs Mixer.
        page = _first(lambda: (p := mesh.page()).status == 503 and p, what="503 from the gateway")
        assert page.body.startswith("UNAVAILABLE: "), page.body
        assert page.seconds < 1.0  # refused at once: nothing to wait for
        _, body, _ = _first(
            lambda: (r := _details(mesh))[0] == 503 and r, what="503 from details' sidecar"
        )
        assert body.startswith("UNAVAILABLE: ")
        _counted(mesh, "details-v1", "inbound.check_transport_errors")
        _counted(mesh, "details-v1", "inbound.check_denied")
        # Reports fail fast too: counted, not kept.
        stats = _counted(mesh, "details-v1", "inbound.report_entries_failed")
        assert stats["wasmcustom.http_mixer_filter.inbound.report_batches_in_flight"] == 0
    finally:
        asyncio.run(mesh.mesh.restart("mixs"))
    _first(lambda: mesh.page().status == 200, what="served again with mixs back")


def test_slow_mixer_fails_closed_within_the_check_timeout_and_drops_reports(mesh):
    assert _details_inbound(mesh)[0] == 200
    mixs = _process(mesh, "mixs")
    os.killpg(mixs.pid, signal.SIGSTOP)
    try:
        status, body, seconds = _first(
            lambda: (r := _details_inbound(mesh))[0] != 200 and r,
            timeout=30,
            what="a Check waiting",
        )
        assert status == 503, (status, body)
        assert body.startswith("UNAVAILABLE: ")
        assert CHECK_TIMEOUT - 0.5 < seconds < CHECK_TIMEOUT + 2.0, seconds
        # The gateway fails the page the same way.
        page = mesh.page()
        assert page.status == 503
        assert page.seconds < CHECK_TIMEOUT + 2.0
        # Every report is a batch of its own here, and the requests of a burst all end
        # together (each waits out its Check): with Mixer stalled the gateway's filter keeps
        # at most MAX_IN_FLIGHT batches outstanding and drops, and counts, the rest.
        url = f"{mesh.topology.productpage_url}?burst"
        with concurrent.futures.ThreadPoolExecutor(4 * MAX_IN_FLIGHT) as pool:
            burst = list(pool.map(lambda _: mixertest.status_of(url)[0], range(4 * MAX_IN_FLIGHT)))
        assert set(burst) == {503}, burst
        stats = _counted(mesh, "istio-ingressgateway", "outbound.report_entries_dropped")
        assert (
            stats["wasmcustom.http_mixer_filter.outbound.report_batches_in_flight"] <= MAX_IN_FLIGHT
        )
        assert stats["wasmcustom.http_mixer_filter.outbound.report_batches_dropped"] > 0
    finally:
        os.killpg(mixs.pid, signal.SIGCONT)
    _first(lambda: _details(mesh)[0] == 200, timeout=30, what="served again")


def _wait_failing_open(mesh, timeout: float = 30.0) -> None:
    """Until the gateway's and details' Envoys run Mixer filters failing open (FAIL_OPEN is
    the policy's zero value, so the JSON config no longer names FAIL_CLOSE)."""

    def current(address):
        dump = (
            urllib.request.urlopen(
                f"http://{address}:15000/config_dump?resource=dynamic_listeners", timeout=5
            )
            .read()
            .decode()
        )
        return "mixer_filter.wasm" in dump and "FAIL_CLOSE" not in dump

    details = mesh.topology.pod_address(mesh.topology.pod("details-v1"))
    _first(
        lambda: current(mesh.topology.gateway_address) and current(details),
        timeout=timeout,
        what="filters failing open",
    )


def test_failing_open_serves_requests_with_mixer_down_or_slow(mesh):
    # Pilot restarts with policyCheckFailOpen true in its mesh config.
    _kill(mesh, "pilot-discovery")
    mesh.topology.mesh_config_path.write_text(
        mesh.topology.mesh_config().replace(
            "policyCheckFailOpen: false", "policyCheckFailOpen: true"
        )
    )
    asyncio.run(mesh.mesh.restart("pilot-discovery"))
    try:
        _wait_failing_open(mesh)
        _kill(mesh, "mixs")
        try:
            # Long after every cached answer expired, pages are still served.
            time.sleep(11)
            for _ in range(5):
                page = mesh.page()
                assert page.status == 200, page.body[:200]
                assert "William Shakespeare" in page.body  # details answered through its sidecar
            _counted(mesh, "details-v1", "inbound.check_transport_errors")
        finally:
            asyncio.run(mesh.mesh.restart("mixs"))
        mixs = _process(mesh, "mixs")
        os.killpg(mixs.pid, signal.SIGSTOP)
        try:
            status, _, seconds = _first(
                lambda: (r := _details_inbound(mesh))[2] > CHECK_TIMEOUT - 0.5 and r,
                timeout=30,
                what="a Check waiting for the stalled Mixer",
            )
            assert status == 200  # served once the Check timed out
            assert seconds < CHECK_TIMEOUT + 2.0
        finally:
            os.killpg(mixs.pid, signal.SIGCONT)
    finally:
        mesh.topology.mesh_config_path.write_text(mesh.topology.mesh_config())
