"""The mesh under a control plane or agent restart, and istioctl's view of the proxies."""

import asyncio
import os
import signal
import time

import pytest

from tests.e2e.meshtest import MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(4)
PROXIES = {
    "productpage-v1.default",
    "details-v1.default",
    "reviews-v1.default",
    "reviews-v2.default",
    "reviews-v3.default",
    "ratings-v1.default",
    "istio-ingressgateway.istio-system",
}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET, heal=False) as mesh:
        mesh.apply("destination-rule-all")
        yield mesh


def _kill(mesh, name):
    (proc,) = [p for p in mesh.mesh.running() if p.name == name]
    os.killpg(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while proc.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not proc.alive()


def _synced_proxies(mesh, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        status = mesh.syncz()
        synced = {
            f"{p['pod']}.{p['namespace']}"
            for p in status["proxies"]
            if all(t["state"] == "SYNCED" for t in p["types"].values()) and len(p["types"]) == 4
        }
        if synced >= PROXIES or time.monotonic() > deadline:
            return synced
        time.sleep(0.1)


def test_bringing_the_mesh_up_again_starts_no_twins(mesh):
    before = {p.name: p.pid for p in mesh.mesh.running()}
    assert len(before) == len(mesh.topology.processes())
    assert asyncio.run(mesh.mesh.up()) is False
    assert {p.name: p.pid for p in mesh.mesh.running()} == before


def test_proxy_status_lists_every_proxy_synced(mesh):
    assert _synced_proxies(mesh) == PROXIES
    out = mesh.istioctl("proxy-status").stdout
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "CDS", "LDS", "EDS", "RDS", "NACKS", "TYPE"]
    for proxy in PROXIES:
        row = next(line.split() for line in lines if line.startswith(proxy + " "))
        assert row[1:6] == ["SYNCED", "SYNCED", "SYNCED", "SYNCED", "0"], row
    detail = mesh.istioctl("proxy-status", "reviews-v2").stdout
    assert detail.splitlines()[1].split()[:2] == ["CDS", "SYNCED"]


def test_proxy_config_reads_each_envoy(mesh):
    clusters = mesh.istioctl(
        "proxy-config", "cluster", "productpage-v1", "--fqdn", "reviews.default.svc.cluster.local"
    ).stdout
    subsets = {line.split()[2] for line in clusters.splitlines()[1:]}
    assert subsets == {"-", "v1", "v2", "v3"}
    listeners = mesh.istioctl("proxy-config", "listener", "reviews-v1").stdout
    assert {line.split()[0] for line in listeners.splitlines()[1:]} == {
        "virtualInbound",
        "virtualOutbound",
    }
    routes = mesh.istioctl("pc", "route", "istio-ingressgateway.istio-system").stdout
    assert "/productpage" in routes
    assert "outbound|9080||productpage.default.svc.cluster.local" in routes
    endpoints = mesh.istioctl(
        "pc",
        "endpoint",
        "productpage-v1",
        "--fqdn",
        "reviews.default.svc.cluster.local",
        "--subset",
        "v2",
    ).stdout
    assert endpoints.splitlines()[1].split()[:2] == [f"{SUBNET}.5:15006", "HEALTHY"]
    missing = mesh.istioctl("proxy-config", "cluster", "nosuchpod", check=False)
    assert missing.returncode == 1
    assert 'pod "nosuchpod.default" not found' in missing.stderr


def test_mesh_keeps_serving_while_pilot_is_away_and_pilot_comes_back(mesh):
    mesh.apply("virtual-service-all-v1")
    _kill(mesh, "pilot-discovery")
    # Envoy keeps its last config: routing still follows all-v1 with no control plane.
    assert mesh.versions(20) == {"v1": 20}
    asyncio.run(mesh.mesh.restart("pilot-discovery"))
    assert _synced_proxies(mesh) == PROXIES
    mesh.apply("virtual-service-reviews-v3")
    assert mesh.versions(10) == {"v3": 10}
    mesh.istioctl("delete", "virtualservice", "reviews", "productpage", "ratings", "details")


def test_an_agent_restarted_mid_run_rejoins(mesh):
    _kill(mesh, "reviews-v1-proxy")  # the agent and, with it, its Envoy
    # Its endpoint refuses connections; callers' retries (connect-failure, another host)
    # keep every page whole, served by the reviews versions still up.
    pages = [mesh.page() for _ in range(20)]
    assert {p.status for p in pages} == {200}
    assert {p.reviews_version for p in pages} <= {"v2", "v3"}
    asyncio.run(mesh.mesh.restart("reviews-v1-proxy"))
    mesh.apply("virtual-service-all-v1")
    assert _synced_proxies(mesh) == PROXIES
    assert mesh.versions(20) == {"v1": 20}
    mesh.istioctl("delete", "virtualservice", "reviews", "productpage", "ratings", "details")
