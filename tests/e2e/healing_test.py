"""The local mesh heals: kill a component and it comes back, and the page is served again.

One mesh for the module, as `make bookinfo` starts it (the kube platform, Bookinfo from
Istio's YAML, the watchdog). Each test SIGKILLs a component's whole process group, as an
OOM kill or a crash would end it: the control plane's processes come back through the
watchdog (counted in `make status`), a pod's agent through the kubelet (counted in its
pod's `restartCount`, as Kubernetes counts it).
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from pilot.configstore.testing import Kubectl
from pkg.testing.wait import poll
from tests.e2e.meshtest import MeshUnderTest, loopback_subnet
from tools.local import launcher
from tools.local.topology import ROOT

SUBNET = loopback_subnet(22)
PROXIES = 7  # Bookinfo's six pods and the ingress gateway


@pytest.fixture(scope="module")
def mesh(tmp_path_factory) -> Iterator[MeshUnderTest]:
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET, platform="kube") as mesh:
        yield mesh


def status(mesh: MeshUnderTest) -> dict[str, list[str]]:
    """`make status`, as a user reads it: name -> [status, restarts, pid]."""
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.local.main",
            "status",
            "--run-dir",
            str(mesh.topology.run_dir),
        ],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.splitlines()
    assert shown[0].split() == ["NAME", "STATUS", "RESTARTS", "PID"]
    return {row.split()[0]: row.split()[1:] for row in shown[1:]}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def connected_proxies(mesh: MeshUnderTest) -> int:
    try:
        return len(mesh.syncz()["proxies"])
    except OSError:
        return 0


def kubectl(mesh: MeshUnderTest) -> Kubectl:
    topology = mesh.topology
    return Kubectl(topology.config_store_url, topology.run_dir, kubeconfig=topology.kubeconfig)


@pytest.mark.parametrize(
    "name",
    [
        "pilot-discovery",
        "istio-ca",
        "node-agent",
        "mixs",
        "config-store",
        "kubelet",
        "kube-controllers",
    ],
)
def test_a_killed_control_plane_process_comes_back_and_the_page_is_served(mesh, name):
    assert mesh.page().status == 200
    before = {s.name: s for s in launcher.read_state(mesh.topology.run_dir)}[name]
    assert status(mesh)[name] == ["Running", str(before.restarts), str(before.pid)]

    os.killpg(before.pid, signal.SIGKILL)

    poll(lambda: status(mesh)[name][:2] == ["Running", str(before.restarts + 1)], f"{name} back")
    spec = next(s for s in mesh.topology.processes() if s.name == name)
    poll(lambda: answers(spec.ready_url), f"{name} ready at {spec.ready_url}")
    poll(lambda: mesh.page().status == 200, "the page served again")
    # Every proxy is connected to Pilot again (after its restart, each reconnects).
    poll(lambda: connected_proxies(mesh) == PROXIES, "every proxy connected to Pilot")
    assert all(mesh.page().status == 200 for _ in range(5))
    # Nothing the store acknowledged is lost, whoever died.
    assert "bookinfo-gateway" in kubectl(mesh).run("get", "gateways").stdout


def test_a_killed_agent_is_restarted_by_the_kubelet_and_its_pod_serves_again(mesh):
    def proxy_restarts() -> int:
        (pod,) = json.loads(
            kubectl(mesh).run("get", "pods", "-l", "app=details", "-o", "json").stdout
        )["items"]
        (proxy,) = [c for c in pod["status"]["containerStatuses"] if c["name"] == "istio-proxy"]
        return proxy["restartCount"] if proxy["ready"] else -1

    assert proxy_restarts() == 0
    os.killpg(_agent_of(mesh, "details-v1-"), signal.SIGKILL)  # the agent and its Envoy

    poll(lambda: proxy_restarts() == 1, "details' istio-proxy restarted and ready")
    poll(lambda: "Book Details" in (page := mesh.page()).body and page.status == 200, "details")
    assert all("Error fetching product details" not in mesh.page().body for _ in range(5))


def _agent_of(mesh: MeshUnderTest, pod_prefix: str) -> int:
    """The pid (and process group) of the pilot-agent of this mesh's pod named `pod_prefix`…"""
    found = []
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        args = [a.decode(errors="replace") for a in argv]
        if "proxy.agent.main" in args and "--pod" in args:
            pod = args[args.index("--pod") + 1]
            if pod.startswith(pod_prefix) and str(mesh.topology.run_dir) in " ".join(args):
                found.append(int(proc.name))
    assert len(found) == 1, f"one agent for {pod_prefix}*: {found}"
    return found[0]
