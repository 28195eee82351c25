"""Each pod in its own network namespace: the sandbox that podnetwork.py plans, made with `ip`.

`NetnsSandbox.create` makes the pod's namespace and veth pair on the node's bridge, gives the
pod its address and a default route, and points the namespace's /etc files (`/etc/netns/<ns>/`,
which `ip netns exec` bind-mounts over /etc) at the hosts file and resolv.conf the kubelet
writes in the pod's folder. Its containers run through `ip netns exec <ns>` and, as their
user and group, `setpriv`. `remove` kills whatever is still in the namespace and deletes it
all; `reap` does that for every namespace and link of the prefix (what a kubelet killed
with SIGKILL left), and `node_down` then removes the bridge.

All of it needs root (as Istio's istio-init needs NET_ADMIN), `ip` (iproute2), `setpriv`
(util-linux) and, for the capture, iptables: `unavailable()` says which is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

from tools.local.podnetwork import Command, NodeNetwork, parse_link_names, parse_netns_list
from tools.local.podruntime import ContainerSpec, PodSpec
from tools.local.processruntime import SandboxError

log = logging.getLogger("kubelet.netns")

_TIMEOUT = 10.0  # seconds for one `ip` command


def unavailable() -> str:
    """Why pods cannot have network namespaces here ("" when they can)."""
    if os.geteuid() != 0:
        return "not root (network namespaces and iptables need NET_ADMIN)"
    for tool in ("ip", "iptables", "setpriv"):
        if shutil.which(tool) is None:
            return f"no {tool} on PATH (tools/setup.sh installs iproute2 and iptables)"
    return ""


def run(command: Command, *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SandboxError(f"{' '.join(command)}: {error}") from None
    if check and done.returncode != 0:
        raise SandboxError(f"{' '.join(command)}: {done.stderr.strip() or done.returncode}")
    return done


def namespaces(network: NodeNetwork) -> list[str]:
    listed = run(("ip", "netns", "list"), check=False).stdout
    return [n for n in parse_netns_list(listed) if network.owns(n)]


def links(network: NodeNetwork) -> list[str]:
    listed = run(("ip", "-o", "link", "show"), check=False).stdout
    return [n for n in parse_link_names(listed) if network.owns(n)]


def kill_all_in(ns: str) -> None:
    """SIGKILL every process in the namespace, and wait (bounded) until none is left."""
    for _ in range(50):
        pids = [int(p) for p in run(("ip", "netns", "pids", ns), check=False).stdout.split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    log.warning("processes still in network namespace %s after SIGKILL", ns)


def delete_namespace(network: NodeNetwork, ns: str) -> None:
    kill_all_in(ns)
    run(("ip", "netns", "delete", ns), check=False)
    shutil.rmtree(pathlib.Path("/etc/netns") / ns, ignore_errors=True)


def node_up(network: NodeNetwork) -> None:
    """The node's bridge with its gateway address, made once (kept if it is there already)."""
    if network.bridge in links(network):
        shown = run(("ip", "-o", "addr", "show", "dev", network.bridge), check=False).stdout
        if f" {network.gateway}/" not in shown:
            run(("ip", "addr", "add", f"{network.gateway}/{network.network.prefixlen}",
                 "dev", network.bridge))  # fmt: skip
        run(("ip", "link", "set", network.bridge, "up"))
        return
    for command in network.node_up():
        run(command)


def reap(network: NodeNetwork) -> list[str]:
    """Remove every pod namespace and link of the prefix but the bridge; what was removed."""
    removed = []
    for ns in namespaces(network):
        delete_namespace(network, ns)
        removed.append(ns)
    for link in links(network):
        if link != network.bridge:
            run(("ip", "link", "delete", link), check=False)
            removed.append(link)
    for leftover in pathlib.Path("/etc/netns").glob(f"{network.prefix}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    return removed


def node_down(network: NodeNetwork) -> list[str]:
    removed = reap(network)
    if network.bridge in links(network):
        for command in network.node_down():
            run(command, check=False)
        removed.append(network.bridge)
    return removed


class NetnsSandbox:
    def __init__(self, network: NodeNetwork) -> None:
        self.network = network

    async def create(self, pod: PodSpec) -> None:
        await asyncio.to_thread(self._create, pod)

    def _create(self, pod: PodSpec) -> None:
        try:
            for command in self.network.pod_up(pod.uid, pod.ip):
                run(command)
            etc = self.network.etc_dir(pod.uid)
            etc.mkdir(parents=True, exist_ok=True)
            for name, target in (("hosts", pod.hosts_file), ("resolv.conf", pod.resolv_file)):
                target.parent.mkdir(parents=True, exist_ok=True)
                target.touch(exist_ok=True)
                link = etc / name
                link.unlink(missing_ok=True)
                # A link, not a copy: the kubelet rewrites the file in place when Services
                # change, and the bind mount `ip netns exec` makes sees the same file.
                link.symlink_to(target)
        except (SandboxError, OSError) as error:
            self._remove(pod)
            raise SandboxError(f"pod network {self.network.netns(pod.uid)}: {error}") from None
        log.info("pod %s/%s: network namespace %s at %s", pod.namespace, pod.name,
                 self.network.netns(pod.uid), pod.ip)  # fmt: skip

    def command(self, pod: PodSpec, container: ContainerSpec) -> list[str]:
        return self.network.exec_in(pod.uid, container.argv, container.user, container.group)

    def exec_command(
        self, pod: PodSpec, argv: Sequence[str], user: int, group: int | None
    ) -> list[str]:
        return self.network.exec_in(pod.uid, tuple(argv), user, group)

    async def remove(self, pod: PodSpec) -> None:
        await asyncio.to_thread(self._remove, pod)

    def _remove(self, pod: PodSpec) -> None:
        ns = self.network.netns(pod.uid)
        kill_all_in(ns)
        for command in self.network.pod_down(pod.uid):
            run(command, check=False)  # what was never made is not there to delete
        shutil.rmtree(self.network.etc_dir(pod.uid), ignore_errors=True)
