"""Pods in real network namespaces, run by the process runtime with the netns sandbox.

A server pod whose init container is pilot-agent's istio-iptables (as injection renders
istio-init) and a client pod: each gets its namespace, its address on the test's bridge and a
default route; the server's capture rules are in its nat table once its app runs; the client,
as its own uid, resolves a Service name from the hosts file to its cluster IP and reaches the
server pod through the bridge. Everything is gone after stop, and after a runtime host killed
with SIGKILL, once reaped by name. Names start with `pn<MESH_TEST_NET>-t-`, addresses are
10.<100+MESH_TEST_NET>.40.0/24. Needs root, `ip`, iptables and setpriv (tools/setup.sh).
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

from pkg.testing.aio import run_async
from pkg.testing.wait import eventually, poll
from tools.local import netnssandbox, processruntime
from tools.local.podhosts import ServiceAddress, render_hosts
from tools.local.podnetwork import NodeNetwork
from tools.local.podruntime import ContainerSpec, PodSpec, State
from tools.local.processruntime import ProcessRuntime
from tools.local.topology import ROOT

NET = int(os.environ.get("MESH_TEST_NET", "0"))
NETWORK = NodeNetwork(prefix=f"pn{NET}-t-", cidr=f"10.{100 + NET}.40.0/24")
SERVER_IP, CLIENT_IP = (str(NETWORK.network.network_address + n) for n in (10, 11))
CLUSTER_IP = "10.96.0.4"

pytestmark = pytest.mark.skipif(
    bool(netnssandbox.unavailable()),
    reason=f"pods in network namespaces need root, ip, iptables and setpriv: "
    f"{netnssandbox.unavailable()}",
)

# The client app: the Service's name from /etc/hosts, then one request to the server pod.
CLIENT = textwrap.dedent(
    f"""
    import os, socket, sys, time, urllib.request
    print("resolved", socket.gethostbyname("reviews"), "as uid", os.getuid(), flush=True)
    while True:
        try:
            with urllib.request.urlopen("http://{SERVER_IP}:9080/", timeout=2) as answer:
                print("answered", answer.status, flush=True)
                break
        except OSError as error:
            print("not yet:", error, flush=True)
            time.sleep(0.2)
    time.sleep(3600)
    """
)
ISTIO_INIT = ("-m", "proxy.agent.main", "istio-iptables", "-p", "15001", "-z", "15006",
              "-u", "1337", "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "", "-d", "15090,15021")  # fmt: skip


def _python(*args: str) -> tuple[str, ...]:
    return (sys.executable, *args)


def _pod(name: str, ip: str, directory: pathlib.Path, *containers: ContainerSpec) -> PodSpec:
    uid = f"{name}-{os.getpid():08d}-{time.time_ns() % 10**6:06d}"
    env = (("PYTHONPATH", str(ROOT)),)
    pod = PodSpec(
        uid=uid,
        namespace="default",
        name=name,
        ip=ip,
        containers=tuple(
            ContainerSpec(c.name, c.image, c.argv, env, init=c.init, user=c.user, group=c.group)
            for c in containers
        ),
        directory=directory / name,
    )
    pod.directory.mkdir(parents=True)
    services = [ServiceAddress("default", "reviews", CLUSTER_IP)]
    pod.hosts_file.write_text(render_hosts(ip, name, "default", services))
    pod.resolv_file.write_text("search default.svc.cluster.local\n")
    return pod


def _leftovers() -> list[str]:
    return netnssandbox.namespaces(NETWORK) + [
        link for link in netnssandbox.links(NETWORK) if link != NETWORK.bridge
    ] + [p.name for p in pathlib.Path("/etc/netns").glob(f"{NETWORK.prefix}*")]  # fmt: skip


@pytest.fixture
def bridge() -> Iterator[NodeNetwork]:
    netnssandbox.node_down(NETWORK)  # an earlier run's, killed
    netnssandbox.node_up(NETWORK)
    try:
        yield NETWORK
    finally:
        netnssandbox.node_down(NETWORK)
    assert NETWORK.bridge not in netnssandbox.links(NETWORK)


def _output(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=10, check=True).stdout


def _nat_rules(ns: str) -> str:
    return _output("ip", "netns", "exec", ns, "iptables", "-t", "nat", "-S")


@run_async(timeout=120)
async def test_pods_get_namespaces_capture_names_and_the_bridge(bridge, tmp_path):
    server = _pod(
        "server",
        SERVER_IP,
        tmp_path,
        ContainerSpec("istio-init", "proxyv2", _python(*ISTIO_INIT), (), init=True, user=0),
        ContainerSpec(
            "app", "app", _python("-m", "http.server", "--bind", SERVER_IP, "9080"), (), user=1000
        ),
    )
    client = _pod(
        "client",
        CLIENT_IP,
        tmp_path,
        ContainerSpec("app", "app", _python("-c", CLIENT), (), user=1001),
    )
    async with asyncio.TaskGroup() as tasks:
        runtime = ProcessRuntime(tasks, sandbox=netnssandbox.NetnsSandbox(bridge))
        try:
            await runtime.start(server)
            await runtime.start(client)

            def app_running(pod: PodSpec) -> bool:
                return any(
                    s.name == "app" and s.state == State.RUNNING for s in runtime.status(pod.uid)
                )

            await eventually(lambda: app_running(server), what="the server app after its init")
            [init] = [s for s in runtime.status(server.uid) if s.name == "istio-init"]
            assert (init.state, init.exit_code) == (State.TERMINATED, 0)
            # Each pod in its own namespace, at its address, with a default route via the bridge.
            ns = bridge.netns(server.uid)
            assert ns in netnssandbox.namespaces(bridge)
            shown = _output("ip", "-n", ns, "-o", "addr", "show", "dev", "eth0")
            assert f"inet {SERVER_IP}/24" in shown
            route = _output("ip", "-n", ns, "route", "show", "default")
            assert f"via {bridge.gateway}" in route
            # istio-init's rules, in the pod's own nat table (and not the host's).
            rules = _nat_rules(ns)
            assert "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN" in rules
            assert "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001" in rules
            assert "ISTIO_OUTPUT" not in _nat_rules(bridge.netns(client.uid))
            # The client: the Service's name from the pod's hosts file, the server through the bridge.
            log = client.log_path("app")
            await eventually(lambda: "answered 200" in log.read_text(), what="the client's request",
                             timeout=30)  # fmt: skip
            assert f"resolved {CLUSTER_IP} as uid 1001" in log.read_text()
            assert 'GET / HTTP/1.1" 200' in server.log_path("app").read_text()
        finally:
            await runtime.stop(server.uid, grace=2.0)
            await runtime.stop(client.uid, grace=2.0)
    assert _leftovers() == []


# A runtime host (the kubelet's part) that starts one pod and then waits to be killed.
HOST = textwrap.dedent(
    """
    import asyncio, json, pathlib, sys
    from tools.local import netnssandbox
    from tools.local.podnetwork import NodeNetwork
    from tools.local.podruntime import ContainerSpec, PodSpec
    from tools.local.processruntime import ProcessRuntime

    async def main(prefix, cidr, uid, ip, directory):
        async with asyncio.TaskGroup() as tasks:
            sandbox = netnssandbox.NetnsSandbox(NodeNetwork(prefix=prefix, cidr=cidr))
            runtime = ProcessRuntime(tasks, sandbox=sandbox)
            app = ContainerSpec("app", "app", ("sleep", "3600"), (), user=1000)
            await runtime.start(PodSpec(uid, "default", "orphan", ip, (app,),
                                        directory=pathlib.Path(directory)))
            while not runtime.status(uid) or runtime.status(uid)[0].state != "running":
                await asyncio.sleep(0.05)
            print("ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_a_killed_runtime_hosts_pods_are_reaped_by_name(bridge, tmp_path):
    uid = f"orphan-{os.getpid():08d}"
    pods_dir = tmp_path / "pods"
    directory = pods_dir / "default_orphan"
    host = subprocess.Popen(
        [sys.executable, "-c", HOST, bridge.prefix, bridge.cidr, uid, SERVER_IP, str(directory)],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        assert host.stdout.readline().strip() == "ready"
        ns = bridge.netns(uid)
        [pid] = [int(p) for p in subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                                 text=True, timeout=10).stdout.split()]  # fmt: skip
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        # Its pod outlives it: the namespace, its link, and the app in its own session.
        assert ns in netnssandbox.namespaces(bridge)
        assert json.loads((directory / "processes.json").read_text())["groups"]
        assert pathlib.Path(f"/proc/{pid}").exists()
        # What the next kubelet does first: stop the recorded processes, remove by name.
        assert processruntime.reap(pods_dir) == ["default_orphan"]
        removed = netnssandbox.reap(bridge)
        assert ns in removed
        poll(lambda: not pathlib.Path(f"/proc/{pid}").exists() or _zombie(pid),
             "the orphaned app gone", 10)  # fmt: skip
        assert _leftovers() == []
    finally:
        if host.poll() is None:
            host.kill()
            host.wait(timeout=10)


def _zombie(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True
