"""Istio's TCP traffic-shifting task on the local platform, with pods captured as Istio's are.

The kube platform with every pod in its own network namespace and istio-init's rules (the
default where the machine allows it): Istio's tcp-echo sample (v1 answers `one <line>`, v2
`two <line>`) and fortio's pod as the client. From the client pod, as its app would (its
user, no proxy variables), plain TCP connections to `tcp-echo:9000` are routed by the task's
rules bound to the mesh: 100% v1 over 50 connections, then 80/20 over 200 connections; and
through the ingress gateway's 31400 with the task's files as Istio publishes them. Names start
with `cd<MESH_TEST_NET>-56-`, pods are in 10.<100+MESH_TEST_NET>.56.0/24. Needs root, `ip`,
iptables and setpriv.
"""

from __future__ import annotations

import collections
import functools
import os
import socket
from collections.abc import Iterator

import pytest
import yaml

from pkg.testing.wait import poll
from tests.e2e.kube_platform_test import POD_START, Cluster
from tests.e2e.meshtest import (
    NEEDS_NETNS,
    ROOT,
    MeshUnderTest,
    captured_pods,
    loopback_subnet,
    reachable_run_dir,
)
from tests.e2e.podclient import tcp_from_pod
from tools.local import netnssandbox
from tools.local.podnetwork import NodeNetwork

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(56)
NETWORK = NodeNetwork(prefix=f"cd{NET}-56-", cidr=f"10.{100 + NET}.56.0/24")
TCP_ECHO = ROOT / "samples/tcp-echo"
FORTIO = ROOT / "samples/httpbin/sample-client/fortio-deploy.yaml"
APP_USER = "1000"  # as the kubelet runs an image USER 1000 (its group stays 0)

pytestmark = NEEDS_NETNS


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with reachable_run_dir(f"cd{NET}-tcp-echo-mesh") as run_dir:
        mesh = MeshUnderTest(
            run_dir,
            SUBNET,
            platform="kube",
            bookinfo=False,
            **captured_pods(NETWORK),
        )
        with mesh:
            cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
            try:
                cluster.run("label", "namespace", "default", "istio-injection=enabled")
                cluster.run("apply", "-f", str(TCP_ECHO / "tcp-echo.yaml"), "-f", str(FORTIO))
                for selector in (
                    "app=tcp-echo,version=v1",
                    "app=tcp-echo,version=v2",
                    "app=fortio",
                ):
                    poll(functools.partial(cluster.ready, selector), f"{selector} ready", POD_START)
                yield cluster
            finally:
                for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                    if log.parent.parent.name.startswith("default_"):
                        print(f"--- {log.parent.parent.name}/{log.name} ---")
                        print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")
        assert netnssandbox.namespaces(NETWORK) == []


def from_client(cluster: Cluster, count: int, host: str = "tcp-echo", port: int = 9000):
    """`count` connections from fortio's pod, as its app: its user, nothing in its
    environment (`env -i`), so only the pod's iptables can send them to the sidecar."""
    (client,) = cluster.ready("app=fortio")
    return tcp_from_pod(NETWORK.netns(client["metadata"]["uid"]), APP_USER, host, port, count)


def from_outside(address: str, port: int, count: int) -> collections.Counter[str]:
    """`count` connections from this host, as the task's `nc $INGRESS_HOST $TCP_INGRESS_PORT`."""
    seen: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        try:
            with socket.create_connection((address, port), timeout=5) as conn:
                conn.sendall(b"hello\n")
                line = conn.makefile("rb").readline().decode()
                seen[line.split(" ")[0] if line else "closed"] += 1
        except OSError as error:
            seen[type(error).__name__] += 1
    return seen


def mesh_bound(path: str) -> str:
    """The task's rules, bound to the mesh instead of the gateway: the VirtualService for
    host tcp-echo, matching its port 9000 (the Gateway itself left out)."""
    documents = []
    for doc in yaml.safe_load_all((TCP_ECHO / path).read_text()):
        if doc["kind"] == "Gateway":
            continue
        if doc["kind"] == "VirtualService":
            spec = doc["spec"]
            doc["metadata"]["name"] = "tcp-echo-mesh"
            spec["hosts"], spec["gateways"] = ["tcp-echo"], ["mesh"]
            for route in spec["tcp"]:
                route["match"] = [{"port": 9000}]
        documents.append(doc)
    return yaml.safe_dump_all(documents)


def _apply_text(cluster: Cluster, name: str, text: str) -> None:
    manifest = cluster.mesh.topology.run_dir / name
    manifest.write_text(text)
    cluster.run("apply", "-f", str(manifest))


def _check_shift(counts: collections.Counter[str], total: int) -> None:
    assert sum(counts.values()) == total, counts
    assert set(counts) <= {"one", "two"}, counts
    # Binomial(200, 0.8): mean 160, standard deviation 5.7; 130..190 is more than 5 of them.
    assert 130 <= counts["one"] <= 190, counts


def test_a_plain_connection_reaches_every_version_without_rules(cluster: Cluster):
    seen = from_client(cluster, 30)
    assert set(seen) == {"one", "two"}, seen  # the Service's two pods, round robin


def test_tcp_shifting_from_a_pod_100_then_80_20(cluster: Cluster):
    try:
        _apply_text(cluster, "all-v1.yaml", mesh_bound("tcp-echo-all-v1.yaml"))
        poll(lambda: from_client(cluster, 10) == {"one": 10}, "every connection to v1", 30)
        assert from_client(cluster, 50) == {"one": 50}
        _apply_text(cluster, "20-v2.yaml", mesh_bound("tcp-echo-20-v2.yaml"))
        poll(lambda: "two" in from_client(cluster, 20), "connections reaching v2", 30)
        counts = from_client(cluster, 200)
        print(f"from a pod, 200 connections: {dict(counts)}")
        _check_shift(counts, 200)
    finally:
        cluster.run("delete", "virtualservice", "tcp-echo-mesh", check=False)


def test_tcp_shifting_through_the_ingress_gateway_as_istios_task(cluster: Cluster):
    address = cluster.mesh.topology.gateway_address
    cluster.run("apply", "-f", str(TCP_ECHO / "tcp-echo-all-v1.yaml"))
    poll(lambda: from_outside(address, 31400, 10) == {"one": 10}, "the gateway's 31400 to v1", 30)
    assert from_outside(address, 31400, 50) == {"one": 50}
    cluster.run("apply", "-f", str(TCP_ECHO / "tcp-echo-20-v2.yaml"))
    poll(lambda: "two" in from_outside(address, 31400, 20), "the gateway sending some to v2", 30)
    counts = from_outside(address, 31400, 200)
    print(f"through the gateway, 200 connections: {dict(counts)}")
    _check_shift(counts, 200)
