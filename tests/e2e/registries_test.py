"""Bookinfo through real Envoys with its services in Consul, and in Eureka.

No real Consul or Eureka server can be installed here, so each mesh talks to a double of
the platform's documented HTTP API (pkg/testing/consul.py, eureka.py) run as its own
process: the pods' agents register through the real py-consul and py-eureka-client, and the
real Pilot reads them through the same clients. The routing samples are Istio's consul/
variants (and the same rules for the Eureka hosts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import consul.aio
import pytest
from py_eureka_client import eureka_basic

from pkg.testing.wait import eventually
from tests.e2e.meshtest import ROOT, MeshUnderTest, loopback_subnet

PLATFORM = ROOT / "samples/bookinfo/platform"


@contextlib.contextmanager
def registry_double(kind: str, address: str, port: int) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pkg.testing.doubles", kind, "--address", address,
         "--port", str(port)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # `ready <url>`, or EOF if it failed to start
        assert line.startswith("ready "), f"the {kind} double did not start: {line!r}"
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(timeout=10)


def registryz(mesh: MeshUnderTest) -> dict:
    with urllib.request.urlopen(f"{mesh.topology.pilot_http_url}/debug/registryz") as response:
        return json.load(response)


def wait_for(condition, what: str, seconds: float = 20.0) -> None:
    asyncio.run(eventually(condition, timeout=seconds, interval=0.2, what=what))


def served_versions(mesh: MeshUnderTest, count: int = 30, user: str | None = None) -> set:
    return set(mesh.versions(count, user=user))


def apply(mesh: MeshUnderTest, *paths: pathlib.Path) -> None:
    mesh.apply(*paths)


# Consul.


@pytest.fixture(scope="module")
def consul_mesh(tmp_path_factory):
    subnet = loopback_subnet(18)  # 10 and 11 are the Mixer e2e tests' own
    # The double lives outside the mesh's subnet: it must outlive the mesh's pods, whose
    # agents deregister on the way down, and not count as one of its processes.
    with registry_double("consul", f"{loopback_subnet(20)}.1", 8500) as url:
        run_dir = tmp_path_factory.mktemp("consul-mesh")
        with MeshUnderTest(run_dir, subnet, registry="Consul", registry_url=url) as mesh:
            mesh.consul_url = url
            yield mesh


def _deregister(url: str, service_id: str) -> bool:
    host, port = url.removeprefix("http://").split(":")

    async def call() -> bool:
        agent = consul.aio.Consul(host=host, port=int(port))
        try:
            return await agent.agent.service.deregister(service_id)
        finally:
            await agent.close()

    return asyncio.run(call())


def test_consul_bookinfo_is_served_from_the_consul_registry(consul_mesh):
    page = consul_mesh.page()
    assert page.status == 200
    assert "William Shakespeare" in page.body
    view = registryz(consul_mesh)
    (member,) = [r for r in view["registries"] if r["provider"] == "Consul"]
    assert member["synced"]
    assert member["state"] == "synced"
    owners = {s["hostname"]: s["registry"] for s in view["services"]}
    for name in ("productpage", "details", "reviews", "ratings"):
        assert owners[f"{name}.service.consul"] == "Consul"
    assert served_versions(consul_mesh) == {"v1", "v2", "v3"}


def test_consul_routing_samples_route_real_requests(consul_mesh):
    apply(consul_mesh, PLATFORM / "consul/destination-rule-all.yaml")
    apply(consul_mesh, PLATFORM / "consul/virtual-service-reviews-test-v2.yaml")
    try:
        assert served_versions(consul_mesh, 10, user="jason") == {"v2"}
        assert served_versions(consul_mesh, 10) == {"v1"}
        apply(consul_mesh, PLATFORM / "consul/virtual-service-reviews-v3.yaml")
        assert served_versions(consul_mesh, 10) == {"v3"}
    finally:
        consul_mesh.delete(PLATFORM / "consul/virtual-service-reviews-v3.yaml")


def test_a_service_deregistered_from_consul_stops_getting_traffic(consul_mesh):
    assert "v1" in served_versions(consul_mesh)
    # Pushes counted before the change: a sync check that predates the push proves nothing.
    before = consul_mesh.pushes()
    assert _deregister(consul_mesh.consul_url, "reviews-v1")
    # The registry's watch returns at once; Pilot then pushes the endpoints.
    wait_for(
        lambda: all(
            e["address"] != consul_mesh.topology.pod_address(consul_mesh.topology.pod("reviews-v1"))
            for e in json.load(
                urllib.request.urlopen(f"{consul_mesh.topology.pilot_http_url}/debug/endpointz")
            )
            if e["service"] == "reviews.service.consul"
        ),
        "reviews-v1 gone from Pilot's endpoints",
    )
    consul_mesh.wait_synced(after=before)
    # Acknowledged is not yet applied everywhere: Envoy drains the old endpoint on its own clock.
    wait_for(
        lambda: served_versions(consul_mesh, 30) == {"v2", "v3"}, "no request reaches reviews-v1"
    )


# Eureka.


@pytest.fixture(scope="module")
def eureka_mesh(tmp_path_factory):
    subnet = loopback_subnet(19)
    with registry_double("eureka", f"{loopback_subnet(20)}.2", 8761) as url:
        run_dir = tmp_path_factory.mktemp("eureka-mesh")
        with MeshUnderTest(run_dir, subnet, registry="Eureka", registry_url=url) as mesh:
            mesh.eureka_url = url
            yield mesh


def test_eureka_bookinfo_is_served_from_the_eureka_registry(eureka_mesh):
    page = eureka_mesh.page()
    assert page.status == 200
    assert "William Shakespeare" in page.body

    def eureka() -> dict:
        return next(r for r in registryz(eureka_mesh)["registries"] if r["provider"] == "Eureka")

    # The page needs one reviews pod; the other two may still be on their way into Eureka.
    wait_for(lambda: eureka()["up_instances"] == 6, "all six pods UP in Pilot's view")
    assert eureka()["state"] == "synced"
    view = registryz(eureka_mesh)
    owners = {s["hostname"]: s["registry"] for s in view["services"]}
    assert owners["reviews.eureka"] == "Eureka"
    assert served_versions(eureka_mesh) == {"v1", "v2", "v3"}


def test_eureka_routing_samples_route_real_requests(eureka_mesh):
    apply(eureka_mesh, PLATFORM / "eureka/destination-rule-all.yaml")
    apply(eureka_mesh, PLATFORM / "eureka/virtual-service-reviews-test-v2.yaml")
    try:
        assert served_versions(eureka_mesh, 10, user="jason") == {"v2"}
        assert served_versions(eureka_mesh, 10) == {"v1"}
    finally:
        eureka_mesh.delete(PLATFORM / "eureka/virtual-service-reviews-test-v2.yaml")


def test_an_instance_marked_down_in_eureka_stops_getting_traffic(eureka_mesh):
    ip = eureka_mesh.topology.pod_address(eureka_mesh.topology.pod("reviews-v1"))
    before = eureka_mesh.pushes()
    asyncio.run(
        eureka_basic.status_update(
            eureka_mesh.eureka_url, "REVIEWS", f"{ip}:reviews:9080", "0", "DOWN"
        )
    )
    wait_for(
        lambda: (
            next(r for r in registryz(eureka_mesh)["registries"] if r["provider"] == "Eureka")[
                "up_instances"
            ]
            == 5
        ),
        "reviews-v1 DOWN in Pilot's view",
    )
    eureka_mesh.wait_synced(after=before)
    # Acknowledged is not yet applied everywhere: Envoy drains the old endpoint on its own clock.
    wait_for(
        lambda: served_versions(eureka_mesh, 30) == {"v2", "v3"}, "no request reaches reviews-v1"
    )
