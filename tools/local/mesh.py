"""The local mesh as one object: bring Bookinfo up on this machine, or take it down.

Used by `make bookinfo` / `make down` (through `main.py`) and by the end-to-end tests,
so both run exactly the same processes the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pathlib
import secrets
import socket
import time
import urllib.request
from collections.abc import Sequence

import yaml

from pkg.config import loader
from pkg.config.resource import Resource
from pkg.kube.client import ConfigClient
from pkg.kube.kubeconfig import write_kubeconfig
from tools.local import install, launcher, netnssandbox, observability, watchdog
from tools.local.podnetwork import NodeNetwork
from tools.local.topology import ROOT, ProcessSpec, Topology
from tools.local.workloadcredentials import write_launcher_entries

log = logging.getLogger("mesh")

# What the install itself ships, as Istio's chart does: Mixer's standard metrics and
# access log, in the store for any Mixer that starts against it.
INSTALL_CONFIG = (ROOT / "mixer/config/telemetry.yaml",)
NETWORK_RECORD = "pod-network.json"  # the pod network this run made, for `down`


def stage_batches(specs: Sequence[ProcessSpec]) -> list[list[ProcessSpec]]:
    """The processes to start, batch by batch in stage order. Stage numbers need not be
    consecutive (the kube platform has no stage of pods), so a batch's place is its number."""
    return [[s for s in specs if s.stage == stage] for stage in sorted({s.stage for s in specs})]


class Mesh:
    def __init__(self, topology: Topology, *, ready_timeout: float = 60.0) -> None:
        self.topology = topology
        self.ready_timeout = ready_timeout

    def running(self) -> list[launcher.Started]:
        return [s for s in launcher.read_state(self.topology.run_dir) if s.alive()]

    async def up(self) -> bool:
        """Start what is not running; True if it started anything. Raises LaunchError."""
        state = launcher.read_state(self.topology.run_dir)
        if state and all(s.alive() for s in state):
            if self.topology.bookinfo:
                await self._wait_serving()
            return False
        if state:
            log.info("some processes of the last run are gone; restarting the mesh")
            launcher.stop(self.topology.run_dir)
        if self.topology.pod_network == "netns":
            self._network_up()
        self._check_ports_free()
        try:
            self.topology.stage_mixer_filter()
        except FileNotFoundError as error:
            raise launcher.LaunchError(str(error)) from None
        write_credentials(self.topology)
        install_objects = self.install_objects()
        self.topology.mesh_config_path.write_text(
            install.mesh_text(install_objects) if install_objects else self.topology.mesh_config()
        )
        write_kubeconfig(self.topology.kubeconfig, self.topology.config_store_url)
        if self.topology.observability:
            observability.write_configs(self.topology)
        specs = self.topology.processes()
        launcher.record_specs(self.topology.run_dir, specs)
        started: dict[str, launcher.Started] = {}
        try:
            batches = stage_batches(specs)
            for number, batch in enumerate(batches, 1):
                stage = batch[0].stage
                log.info(
                    "stage %d of %d: starting %s",
                    number,
                    len(batches),
                    ", ".join(s.name for s in batch),
                )
                for spec in batch:
                    started[spec.name] = launcher.start(self.topology.log_dir, spec)
                launcher.record(self.topology.run_dir, started.values())
                await launcher.wait_ready(
                    batch, started, self.ready_timeout, progress=lambda line: log.info("  %s", line)
                )
                if stage == 1:
                    log.info("applying the install's config and Bookinfo's services and gateway")
                    await self.apply_objects(install_objects)
                    await self.apply_files(*INSTALL_CONFIG, *self.topology.bookinfo_config)
            if self.topology.bookinfo:
                log.info("waiting for the product page through the gateway")
                await self._wait_serving()
            if self.topology.heal:
                # Last, so that nothing it would restart is still starting.
                guard = watchdog.spec(self.topology.run_dir, stage=batches[-1][0].stage + 1)
                started[guard.name] = launcher.start(self.topology.log_dir, guard)
                launcher.record(self.topology.run_dir, started.values())
        except BaseException:
            self.down()
            raise
        return True

    def install_objects(self) -> list[dict[str, object]]:
        """On the kube platform, what `istioctl install` applies that its controllers read:
        the mesh's and the injector's ConfigMaps (MeshConfig is the topology's)."""
        if self.topology.platform != "kube":
            return []
        return install.configmaps(self.topology.mesh_config(), self.topology.interception_mode)

    def _network_up(self) -> None:
        network = self.topology.node_network
        self.topology.run_dir.mkdir(parents=True, exist_ok=True)
        (self.topology.run_dir / NETWORK_RECORD).write_text(
            json.dumps({"prefix": network.prefix, "cidr": network.cidr})
        )
        removed = netnssandbox.reap(network)
        if removed:
            log.info("removed what the last run left of the pod network: %s", ", ".join(removed))
        try:
            netnssandbox.node_up(network)
        except netnssandbox.SandboxError as error:
            raise launcher.LaunchError(f"the node's pod network: {error}") from None
        capture = (
            "Istio's iptables capture on"
            if self.topology.interception
            else "no capture (apps use their sidecar as HTTP proxy)"
        )
        log.info("pods in network namespaces on bridge %s (%s, node address %s), %s",
                 network.bridge, network.cidr, network.gateway, capture)  # fmt: skip

    async def restart(self, name: str) -> None:
        """Start one process of the topology again (after it died), and wait until it is ready."""
        spec = next(s for s in self.topology.processes() if s.name == name)
        with launcher.state_lock(self.topology.run_dir):
            state = {s.name: s for s in launcher.read_state(self.topology.run_dir)}
            if name in state and state[name].alive():
                raise launcher.LaunchError(f"{name} is still running (pid {state[name].pid})")
            state[name] = launcher.start(self.topology.log_dir, spec)
            launcher.record(self.topology.run_dir, state.values())
        await launcher.wait_ready([spec], state, self.ready_timeout)

    def down(self) -> list[str]:
        killed = launcher.stop(self.topology.run_dir)
        # After the kubelet: whatever it could not stop (it was killed) goes by name. The
        # network this run made, as recorded: never another mesh's by the same prefix.
        record = self.topology.run_dir / NETWORK_RECORD
        try:
            network = NodeNetwork(**json.loads(record.read_text()))
        except FileNotFoundError:
            return killed
        except (ValueError, TypeError) as error:
            log.warning("%s: %s; the pod network is left as it is", record, error)
            return killed
        removed = netnssandbox.node_down(network)
        if removed:
            log.info("removed the pod network: %s", ", ".join(removed))
        record.unlink(missing_ok=True)
        return killed

    async def apply_objects(self, objects: list[dict[str, object]]) -> list[Resource]:
        resources = [loader.load_object(o, source="the install") for o in objects]
        async with ConfigClient(self.topology.config_store_url) as client:
            for resource in resources:
                await client.apply(resource)
        return resources

    async def apply_files(self, *paths: str | pathlib.Path) -> list[Resource]:
        resources = [r for path in paths for r in loader.load_file(path)]
        async with ConfigClient(self.topology.config_store_url) as client:
            for resource in resources:
                await client.apply(resource)
        return resources

    async def _wait_serving(self) -> None:
        """The page through the gateway, the check a user would make."""
        deadline = time.monotonic() + self.ready_timeout
        url = self.topology.productpage_url
        last = ""
        next_report = time.monotonic() + launcher.SLOW_AFTER
        while time.monotonic() < deadline:
            if time.monotonic() >= next_report:
                log.info("  waiting for %s: %s", url, last or "no answer yet")
                next_report += launcher.SLOW_EVERY
            try:
                status = await asyncio.to_thread(_get_status, url)
                if status == 200:
                    return
                last = f"HTTP {status}"
            except OSError as error:
                last = str(error)
            await asyncio.sleep(0.2)
        raise launcher.LaunchError(
            f"{url} did not answer 200 within {self.ready_timeout:.0f}s (last: {last})"
        )

    def _check_ports_free(self) -> None:
        busy = []
        for spec in self.topology.processes():
            host_port = spec.ready_url.split("/")[2]
            host, port = host_port.rsplit(":", 1)
            with contextlib.closing(socket.socket()) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((host, int(port)))
                except OSError:
                    busy.append(f"{host}:{port} ({spec.name})")
        if busy:
            raise launcher.LaunchError(
                "addresses already in use by something else: "
                + ", ".join(busy)
                + ". Is another mesh running?"
            )


def write_credentials(topology: Topology) -> None:
    """The node agent's token and the CA's token table (the local stand-in for Kubernetes
    service-account tokens): the node agent may ask for any identity of the trust domain,
    as it vouches for the pods of its machine. A new token each time the mesh starts."""
    token = secrets.token_urlsafe(32)
    _write_private(topology.node_agent_token, token + "\n")
    pilot = secrets.token_urlsafe(32)
    _write_private(topology.pilot_token, pilot + "\n")
    # The broker mints binding identities in its own namespace, and nothing else.
    broker = secrets.token_urlsafe(32)
    _write_private(topology.broker_token, broker + "\n")
    _write_private(topology.broker_credentials, f"platform:{secrets.token_urlsafe(16)}\n")
    table = [
        {"token": token, "identities": ["spiffe://cluster.local/ns/*/sa/*"]},
        {"token": pilot, "identities": ["spiffe://cluster.local/ns/istio-system/sa/istiod"]},
        {"token": broker, "identities": ["spiffe://cluster.local/ns/istio-broker/sa/*"]},
    ]
    _write_private(topology.ca_tokens, yaml.safe_dump(table))
    # Each workload the launcher runs gets its own SDS socket, bound to its identity.
    write_launcher_entries(topology.credentials(), topology.launcher_workloads())


def _write_private(path: pathlib.Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5.0) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
