"""The local platform as a cluster whose node gives every pod its own network namespace.

The same user journey as kube_platform_test.py (Istio's bookinfo.yaml with kubectl, the page
through the gateway, scale reviews-v3 to 0 and back, delete a pod, kubectl logs), run by the
kubelet with the netns runtime: each pod in its own namespace on the node's bridge, the
control plane on the bridge's address, the gateway in the host's namespace reaching the pods
through the bridge. Interception is off (the install's interceptionMode NONE: apps use their
sidecar as HTTP proxy on the pod's address). Also: a kubelet killed with SIGKILL is started
again by the watchdog and removes what the dead one left by name, and `down` leaves no
namespace, link or /etc/netns folder behind. Names start with `pn<MESH_TEST_NET>-47-`, pods
are in 10.<100+MESH_TEST_NET>.47.0/24. Needs root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import ipaddress
import os
import pathlib
import signal
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from pkg.testing.wait import poll
from tests.e2e.kube_platform_test import (
    POD_START,
    Cluster,
    bookinfo,
    test_a_deleted_pod_is_replaced_and_the_page_keeps_working,
    test_kubectl_logs,
    test_scale_reviews_v3_to_zero_and_back,
)
from tests.e2e.meshtest import MeshUnderTest, loopback_subnet
from tools.local import launcher, netnssandbox
from tools.local.podnetwork import NodeNetwork

__all__ = [  # the journey's steps, collected here too, against this module's cluster
    "bookinfo",
    "test_a_deleted_pod_is_replaced_and_the_page_keeps_working",
    "test_kubectl_logs",
    "test_scale_reviews_v3_to_zero_and_back",
]

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(47)
NETWORK = NodeNetwork(prefix=f"pn{NET}-47-", cidr=f"10.{100 + NET}.47.0/24")

pytestmark = pytest.mark.skipif(
    bool(netnssandbox.unavailable()),
    reason=f"pods in network namespaces need root, ip, iptables and setpriv: "
    f"{netnssandbox.unavailable()}",
)


def _leftovers() -> list[str]:
    return (
        netnssandbox.namespaces(NETWORK)
        + netnssandbox.links(NETWORK)
        + [p.name for p in pathlib.Path("/etc/netns").glob(f"{NETWORK.prefix}*")]
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_dir = tmp_path_factory.mktemp("kube-netns-mesh")
    mesh = MeshUnderTest(
        run_dir,
        SUBNET,
        platform="kube",
        bookinfo=False,
        pod_network="netns",
        pod_cidr=NETWORK.cidr,
        netns_prefix=NETWORK.prefix,
        control_address=NETWORK.gateway,
        interception=True,
    )
    with mesh:
        cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
        try:
            yield cluster
        finally:
            for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                if log.parent.parent.name.startswith("default_"):
                    print(f"--- {log.parent.parent.name}/{log.name} ---")
                    print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")
    assert _leftovers() == []  # `down` removed the bridge and every pod's namespace


def _netns_of(pod: dict[str, Any]) -> str:
    return NETWORK.netns(pod["metadata"]["uid"])


def _in_netns(ns: str, *command: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *command], capture_output=True, text=True, timeout=10
    ).stdout


def test_each_pod_has_its_own_namespace_on_the_bridge(cluster: Cluster, bookinfo: str):
    table = [line.split() for line in cluster.run("get", "pods").splitlines()]
    assert {(row[1], row[2]) for row in table[1:]} == {("2/2", "Running")}
    pods = cluster.pods()
    addresses = {pod["status"]["podIP"] for pod in pods}
    assert len(addresses) == len(pods) == 6
    assert all(ipaddress.IPv4Address(a) in NETWORK.network for a in addresses)
    assert {p["status"]["hostIP"] for p in pods} == {NETWORK.gateway}
    assert sorted(_netns_of(p) for p in pods) == sorted(netnssandbox.namespaces(NETWORK))
    (productpage,) = cluster.ready("app=productpage")
    ns = _netns_of(productpage)
    assert f"inet {productpage['status']['podIP']}/24" in _in_netns(ns, "ip", "-o", "addr")
    # Service names resolve in the pod to their cluster IPs, as cluster DNS would answer.
    reviews_ip = cluster.run("get", "service", "reviews", "-o", "jsonpath={.spec.clusterIP}")
    assert _in_netns(ns, "getent", "hosts", "reviews").split()[0] == reviews_ip
    # The app runs as its image's user, the proxy by the group Istio's rules exclude.
    owners = subprocess.run(
        ["ps", "-o", "uid=,gid=,comm=", "-p", ",".join(_pids(ns))],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    seen = {tuple(line.split()) for line in owners.splitlines() if line.strip()}
    assert ("1000", "0", "python") in seen  # productpage's image runs as USER 1000
    assert ("0", "1337", "envoy") in seen
    # Every version answers through the gateway, from the pods behind the bridge.
    versions = {page.reviews_version for page in cluster.pages(30)}
    assert versions == {"v1", "v2", "v3"}


def _pids(ns: str) -> list[str]:
    return subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10
    ).stdout.split()


def test_a_deleted_pods_namespace_goes_with_it(cluster: Cluster, bookinfo: str):
    (pod,) = cluster.ready("app=details")
    ns = _netns_of(pod)
    assert ns in netnssandbox.namespaces(NETWORK)
    cluster.run("delete", "pod", pod["metadata"]["name"])
    poll(lambda: ns not in netnssandbox.namespaces(NETWORK), "its namespace removed", POD_START)
    assert NETWORK.host_link(pod["metadata"]["uid"]) not in netnssandbox.links(NETWORK)
    poll(lambda: len(cluster.ready("app=details")) == 1, "a new details pod ready", POD_START)


def test_a_killed_kubelets_leftovers_are_reaped_by_the_next(cluster: Cluster, bookinfo: str):
    topology = cluster.mesh.topology
    (kubelet,) = [s for s in launcher.read_state(topology.run_dir) if s.name == "kubelet"]
    before = set(netnssandbox.namespaces(NETWORK))
    os.kill(kubelet.pid, signal.SIGKILL)

    def restarted() -> bool:
        state = {s.name: s for s in launcher.read_state(topology.run_dir)}
        return state["kubelet"].pid != kubelet.pid and state["kubelet"].alive()

    poll(restarted, "the watchdog's new kubelet", POD_START)
    log = topology.log_dir / "kubelet.log"
    poll(
        lambda: "removed what an earlier kubelet left" in log.read_text(),
        "the new kubelet reaping the old one's namespaces",
        POD_START,
    )
    poll(
        lambda: len(cluster.ready("")) == 6 and cluster.mesh.page().status == 200,
        "every pod running again and the page answering",
        POD_START,
    )
    # The same pods (their uids name their namespaces), in namespaces made anew.
    assert set(netnssandbox.namespaces(NETWORK)) == before
