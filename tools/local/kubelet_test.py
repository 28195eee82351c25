"""The kubelet hands each pod with a sidecar its own SDS socket: against the embedded API
server over real watches, with a runtime that records what it is asked to run (the process
runtime starts real programs; what is checked here is what the kubelet tells them)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import pytest
from kubernetes.aio import client

from pilot.configstore.server import ConfigStoreServer, Options
from pilot.registry.kube.testing import api_client
from pkg.testing.aio import run_async
from pkg.testing.wait import eventually
from tools.local.images import ImageTable
from tools.local.kubelet import Kubelet, KubeletOptions
from tools.local.podruntime import ContainerStatus, PodSpec
from tools.local.workloadcredentials import WorkloadCredentials

NODE = "local"


class RecordingRuntime:
    """A PodRuntime that runs nothing and remembers what it was asked to run."""

    def __init__(self) -> None:
        self.started: dict[str, PodSpec] = {}

    async def start(self, pod: PodSpec) -> None:
        self.started[pod.uid] = pod

    async def stop(self, uid: str, grace: float) -> None:
        self.started.pop(uid, None)

    def status(self, uid: str) -> Sequence[ContainerStatus]:
        return []

    def pods(self) -> Sequence[str]:
        return list(self.started)

    async def close(self) -> None:
        self.started.clear()


def pod(name: str, account: str, *, sidecar: bool) -> dict[str, Any]:
    containers: list[dict[str, Any]] = [{"name": "app", "image": "example/app:1"}]
    if sidecar:
        containers.append({"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.20.3"})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {"nodeName": NODE, "serviceAccountName": account, "containers": containers},
    }


@contextlib.asynccontextmanager
async def kubelet(tmp_path: pathlib.Path) -> AsyncIterator[tuple[client.CoreV1Api, Kubelet]]:
    server = ConfigStoreServer(options=Options(port=0, db=tmp_path / "db"))
    await server.start()
    apis = [api_client(server.url), api_client(server.url)]
    options = KubeletOptions(
        node_name=NODE,
        address="127.0.0.1",
        pod_ips=("127.0.9.10", "127.0.9.20"),
        pods_dir=tmp_path / "pods",
        images=ImageTable.load(),
        settings={"discovery_address": "127.0.0.1:15012", "config_store": "http://x"},
        credentials=WorkloadCredentials(folder=tmp_path / "workloads", sockets=tmp_path / "sds"),
    )
    node = Kubelet(apis[0], RecordingRuntime(), options)
    task = asyncio.create_task(node.run())
    try:
        await eventually(node.pods.synced.is_set, what="kubelet synced")
        yield client.CoreV1Api(apis[1]), node
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        for api in apis:
            await api.close()
        await server.stop()


def entries(folder: pathlib.Path) -> dict[str, dict[str, str]]:
    return {p.name: json.loads(p.read_text()) for p in folder.glob("*.json")}


@run_async(timeout=60)
async def test_a_pods_sidecar_gets_a_socket_bound_to_its_service_account(tmp_path):
    async with kubelet(tmp_path) as (core, node):
        await core.create_namespaced_pod(
            "default", pod("reviews-v1", "bookinfo-reviews", sidecar=True)
        )
        await core.create_namespaced_pod("default", pod("plain", "default", sidecar=False))
        await eventually(lambda: len(node.running) == 2, what="both pods started")
        running = node.running[("default", "reviews-v1")]
        [(name, entry)] = entries(tmp_path / "workloads").items()
        assert name == f"kubelet-default_reviews-v1_{running.uid[:8]}.json"
        assert entry == {
            "identity": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
            "socket": str(tmp_path / "sds" / running.uid[:8] / "sds.sock"),
            "workload": "default/reviews-v1",
        }
        # The sidecar is told that socket, and no other.
        [proxy] = [c for c in running.spec.containers if c.name == "istio-proxy"]
        assert proxy.argv[proxy.argv.index("--sds-socket") + 1] == entry["socket"]
        assert proxy.argv.count("--sds-socket") == 1

        # The pod goes: so does its entry (and with it, the node agent's socket).
        await core.delete_namespaced_pod("reviews-v1", "default", grace_period_seconds=0)
        await eventually(
            lambda: not entries(tmp_path / "workloads"), what="the deleted pod's entry removed"
        )


def injected(name: str, mode: str) -> dict[str, Any]:
    """A pod as injection leaves it (the parts the kubelet reads): its sidecar told `mode`."""
    body = pod(name, "bookinfo-reviews", sidecar=True)
    body["spec"]["containers"][0]["image"] = "docker.io/istio/examples-bookinfo-reviews-v1:1"
    proxy = body["spec"]["containers"][1]
    proxy["args"] = ["proxy", "sidecar"]
    proxy["env"] = [{"name": "ISTIO_META_INTERCEPTION_MODE", "value": mode}]
    proxy["securityContext"] = {"runAsUser": 1337, "runAsGroup": 1337}
    if mode != "NONE":
        body["spec"]["initContainers"] = [
            {
                "name": "istio-init",
                "image": "docker.io/istio/proxyv2:1.20.3",
                "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337"],
                "securityContext": {"runAsUser": 0, "runAsGroup": 0},
            }
        ]
    return body


@pytest.fixture
def reachable() -> Iterator[pathlib.Path]:
    """A folder uid 1337 can reach (pytest's are under root's 0700 /tmp/pytest-of-root)."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="kubelet-test-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@run_async(timeout=60)
async def test_how_a_pods_containers_run_follows_its_injection(reachable):
    async with kubelet(reachable) as (core, node):
        await core.create_namespaced_pod("default", injected("proxied", "NONE"))
        await core.create_namespaced_pod("default", injected("captured", "REDIRECT"))
        await eventually(lambda: len(node.running) == 2, what="both pods started")
        proxied = {c.name: c for c in node.running[("default", "proxied")].spec.containers}
        captured = {c.name: c for c in node.running[("default", "captured")].spec.containers}
        ip = node.running[("default", "proxied")].spec.ip
        # No capture: the app's HTTP goes to its sidecar as its proxy; with capture it needs none.
        assert dict(proxied["app"].env)["http_proxy"] == f"http://{ip}:15001"
        assert "http_proxy" not in dict(captured["app"].env)
        # The app as its image's user; the proxy as Istio's istio-proxy, 1337:1337, with its
        # SDS socket made that user's and a run folder of its own.
        assert (proxied["app"].user, proxied["app"].group) == (1001, None)
        assert (proxied["istio-proxy"].user, proxied["istio-proxy"].group) == (1337, 1337)
        (entry,) = [e for e in entries(reachable / "workloads").values()
                    if e["workload"] == "default/proxied"]  # fmt: skip
        assert (entry["uid"], entry["gid"]) == (1337, 1337)
        run_dir = node.running[("default", "proxied")].spec.directory / "istio-proxy"
        info = run_dir.stat()
        assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1337, 1337, 0o750)
        # istio-init: pilot-agent's istio-iptables as root, with none of the proxy's flags.
        init = captured["istio-init"]
        assert init.init
        assert (init.user, init.group) == (0, 0)
        assert init.argv[-7:] == ("istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337")
        assert init.argv[-9:-7] == ("-m", "proxy.agent.main")
        assert "--sds-socket" not in init.argv
        assert "--sds-socket" in captured["istio-proxy"].argv


@run_async(timeout=60)
async def test_a_pods_hosts_file_follows_the_services(tmp_path):
    async with kubelet(tmp_path) as (core, node):
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "reviews"},
            "spec": {"ports": [{"name": "http", "port": 9080}], "selector": {"app": "reviews"}},
        }
        created = await core.create_namespaced_service("default", service)
        await core.create_namespaced_pod("default", pod("productpage", "default", sidecar=False))
        await eventually(lambda: len(node.running) == 1, what="the pod started")
        spec = node.running[("default", "productpage")].spec
        ip = created.spec.cluster_ip
        line = f"{ip}\treviews.default.svc.cluster.local reviews.default reviews"
        assert line in spec.hosts_file.read_text().splitlines()
        assert "search default.svc.cluster.local" in spec.resolv_file.read_text()
        inode = spec.hosts_file.stat().st_ino
        ratings = dict(service, metadata={"name": "ratings"})
        made = await core.create_namespaced_service("default", ratings)
        await eventually(
            lambda: f"{made.spec.cluster_ip}\tratings." in spec.hosts_file.read_text(),
            what="the new Service in the pod's hosts file",
        )
        await core.delete_namespaced_service("reviews", "default")
        await eventually(
            lambda: "reviews" not in spec.hosts_file.read_text(),
            what="the deleted Service gone from the hosts file",
        )
        # Rewritten in place: the file a namespace has bind-mounted as /etc/hosts is this one.
        assert spec.hosts_file.stat().st_ino == inode


def test_pod_addresses_go_round_as_host_local_ipam_gives_them() -> None:
    from tools.local.kubelet import next_pod_address

    first, last = "10.244.0.2", "10.244.0.5"
    assert next_pod_address(first, last, "", []) == "10.244.0.2"
    # After the one given last, not the lowest free: a deleted pod's address rests a while.
    assert next_pod_address(first, last, "10.244.0.3", ["10.244.0.2"]) == "10.244.0.4"
    assert next_pod_address(first, last, "10.244.0.5", []) == "10.244.0.2"  # wraps round
    used = ["10.244.0.2", "10.244.0.3", "10.244.0.5", None]
    assert next_pod_address(first, last, "10.244.0.4", used) == "10.244.0.4"
    everything = ["10.244.0.2", "10.244.0.3", "10.244.0.4", "10.244.0.5"]
    assert next_pod_address(first, last, "10.244.0.3", everything) is None
    assert next_pod_address(first, last, "192.0.2.1", []) == "10.244.0.2"  # outside: from the first


def test_prometheus_finds_pods_by_istios_annotations_and_the_sidecars_stats_port() -> None:
    from tools.local.kubelet import _scrape_ports

    pod = {
        "metadata": {
            "annotations": {
                "prometheus.io/scrape": "true",
                "prometheus.io/port": "15020",
                "prometheus.io/path": "/stats/prometheus",
            }
        },
        "spec": {
            "containers": [
                {"name": "app", "ports": [{"containerPort": 9080}]},
                {
                    "name": "istio-proxy",
                    "ports": [{"name": "http-envoy-prom", "containerPort": 15090}],
                },
            ]
        },
    }
    assert _scrape_ports(pod, "kubernetes-pods") == [("15020", "/stats/prometheus")]
    assert _scrape_ports(pod, "envoy-stats") == [("15090", "/stats/prometheus")]
    unannotated = {"metadata": {}, "spec": {"containers": [{"name": "app"}]}}
    assert _scrape_ports(unannotated, "kubernetes-pods") == []
    assert _scrape_ports(unannotated, "envoy-stats") == []


@run_async(timeout=60)
async def test_a_proxy_that_cannot_reach_its_pod_folder_waits_with_the_reason(tmp_path):
    # tmp_path is under root's 0700 /tmp/pytest-of-root: uid 1337 cannot get through.
    async with kubelet(tmp_path) as (core, node):
        await core.create_namespaced_pod("default", injected("captured", "REDIRECT"))
        await eventually(lambda: ("default", "captured") in node.running, what="pod seen")
        running = node.running[("default", "captured")]
        reason, message = running.waiting["istio-proxy"]
        assert reason == "CreateContainerConfigError"
        assert "does not let uid 1337 gid 1337 through" in message
        assert not (running.spec.directory / "istio-proxy").exists()
