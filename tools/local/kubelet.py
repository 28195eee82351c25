"""The local kubelet: it runs the pods bound to its node, as a Kubernetes kubelet does.

It watches the pods whose `spec.nodeName` is its node. A new one gets an address from the
node's range, its containers resolved to programs (images.py), and is started by the pod
runtime (podruntime.py); its status (phase, host and pod IP, conditions, every container's
state, restarts and readiness from its probes) is written back through the `status`
subresource whenever it changes. A pod marked for deletion is stopped within its grace period
and then removed for good (a delete with gracePeriodSeconds=0 and its uid as precondition); a
pod deleted outright is stopped at once. Containers' logs are served on the kubelet's port
(kubeletserver.py) for the API server's `pods/log`.

A pod with a sidecar is handed its own SDS socket before it starts: the kubelet writes the
node agent an entry binding that socket to the identity of the pod's service account
(workloadcredentials.py), gives the socket to the sidecar (the image table's `{sds_socket}`),
and removes the entry when the pod stops.

Each pod gets the hosts file and resolv.conf Kubernetes' kubelet writes (podhosts.py), in its
folder, with the Services' cluster IPs: rewritten in place whenever a Service changes, and
made the pod's /etc files by a runtime that gives pods their own network namespace. Each
container runs as its securityContext's runAsUser/runAsGroup (the pod's, else the image's
user) where the runtime can set them. A pod whose sidecar is told INTERCEPTION_MODE NONE (no
istio-init, as injection renders it then) has its other containers reach the sidecar as their
HTTP proxy (`http_proxy`, its outbound port on the pod's address).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import logging
import pathlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
from kubernetes.aio import client
from kubernetes.aio.client.exceptions import ApiException

from pkg.inject.inject import PROXY
from tools.local import containerfiles, podhosts, podstatus
from tools.local.images import ImageTable, Program, UnknownImage
from tools.local.kubeinformer import Informer, Key, Object
from tools.local.podruntime import ContainerSpec, PodRuntime, PodSpec, RestartPolicy, State
from tools.local.prober import Probe
from tools.local.workloadcredentials import WorkloadCredentials
from tools.local.workqueue import WorkQueue

log = logging.getLogger("kubelet")


@dataclasses.dataclass(frozen=True)
class KubeletOptions:
    node_name: str
    address: str  # the node's address: pods' hostIP, and where the kubelet serves logs
    pod_ips: tuple[str, str]  # the first and last address pods get
    pods_dir: pathlib.Path
    images: ImageTable
    settings: Mapping[str, str] = dataclasses.field(default_factory=dict)  # image table facts
    port: int = 10250
    sync_period: float = 0.5  # how often containers are probed and status compared
    credentials: WorkloadCredentials | None = None  # None: pods get no SDS socket of their own
    nameserver: str = ""  # the node's DNS forwarder, for the pods' resolv.conf ("": none)


CREDENTIALS_PREFIX = "kubelet-"  # the kubelet's entries in the workload-credentials folder
OUTBOUND_PORT = 15001  # the sidecar's outbound listener: the apps' HTTP proxy without capture
INTERCEPTION_ENV = "ISTIO_META_INTERCEPTION_MODE"  # what injection tells the sidecar
CAPTURED = ("REDIRECT", "TPROXY")


@dataclasses.dataclass
class Running:
    uid: str
    spec: PodSpec
    probes: dict[str, Probe]
    waiting: dict[str, tuple[str, str]]  # containers that could not be created, and why
    written: dict[str, Any] | None = None  # the status last written
    credentials_entry: str | None = None  # its entry in the workload-credentials folder
    started_at: float = dataclasses.field(default_factory=time.time)


class Kubelet:
    def __init__(self, api: client.ApiClient, runtime: PodRuntime, options: KubeletOptions) -> None:
        self.options = options
        self._core = client.CoreV1Api(api)
        self._runtime = runtime
        self.running: dict[Key, Running] = {}
        self._last_address = ""  # the address given last: the next pod gets one after it
        self._queue: WorkQueue[Key] = WorkQueue("kubelet", self._reconcile)
        self.pods = Informer(
            "kubelet pods",
            self._core.list_pod_for_all_namespaces,
            self._changed,
            field_selector=f"spec.nodeName={options.node_name}",
        )
        self.services = Informer(
            "kubelet services", self._core.list_service_for_all_namespaces, self._services_changed
        )

    async def run(self, started: asyncio.Event | None = None) -> None:
        async with aiohttp.ClientSession() as probes, asyncio.TaskGroup() as tasks:
            tasks.create_task(self.services.run(), name="kubelet-services")
            tasks.create_task(self.pods.run(), name="kubelet-pods")
            await self.services.synced.wait()  # pods start with every Service in their hosts
            tasks.create_task(self._queue.run(), name="kubelet-work")
            await self.pods.synced.wait()
            tasks.create_task(self._sync_status(probes), name="kubelet-status")
            if started is not None:
                started.set()

    async def _changed(self, before: Object | None, after: Object | None) -> None:
        self._queue.add(_key(after or before or {}))

    async def _services_changed(self, before: Object | None, after: Object | None) -> None:
        old = podhosts.service_addresses([before] if before else [])
        new = podhosts.service_addresses([after] if after else [])
        if old != new:
            for running in list(self.running.values()):
                self._write_hosts(running.spec)

    def _write_hosts(self, pod: PodSpec) -> None:
        """The pod's hosts file and resolv.conf, rewritten in place (the same file stays
        mounted as the pod's /etc/hosts) when their text changes."""
        services = podhosts.service_addresses(self.services.cache.values())
        texts = {
            pod.hosts_file: podhosts.render_hosts(pod.ip, pod.name, pod.namespace, services),
            pod.resolv_file: podhosts.render_resolv(
                pod.namespace, nameserver=self.options.nameserver
            ),
        }
        pod.directory.mkdir(parents=True, exist_ok=True)
        for path, text in texts.items():
            try:
                if path.exists() and path.read_text() == text:
                    continue
                with path.open("w") as out:  # truncates the same inode: no rename
                    out.write(text)
            except OSError as error:
                log.warning("pod %s/%s: %s not written: %s", pod.namespace, pod.name, path, error)

    # Reconciling one pod: run what should run, stop what should not.

    async def _reconcile(self, key: Key) -> None:
        pod = self.pods.get(*key)
        running = self.running.get(key)
        uid = ((pod or {}).get("metadata") or {}).get("uid")
        if running is not None and (pod is None or running.uid != uid):
            await self._stop(key, grace=0.0)  # deleted outright, or replaced under its name
            running = None
        if pod is None:
            return
        meta, phase = pod["metadata"], (pod.get("status") or {}).get("phase")
        if meta.get("deletionTimestamp"):
            await self._terminate(key, pod)
            return
        if running is None and phase not in ("Succeeded", "Failed"):
            await self._start(key, pod)

    async def _terminate(self, key: Key, pod: Object) -> None:
        meta = pod["metadata"]
        deadline = _parse_time(meta.get("deletionTimestamp"))
        grace = max(0.0, deadline - time.time()) if deadline else 0.0
        await self._stop(key, grace)
        try:
            await self._core.delete_namespaced_pod(
                meta["name"],
                meta.get("namespace", "default"),
                grace_period_seconds=0,
                body={"preconditions": {"uid": meta["uid"]}},
            )
        except ApiException as error:
            if error.status not in (404, 409):  # gone already, or another incarnation
                raise

    async def _stop(self, key: Key, grace: float) -> None:
        running = self.running.pop(key, None)
        if running is not None:
            log.info("stopping pod %s/%s (grace %.0fs)", *key, grace)
            await self._runtime.stop(running.uid, grace)
            if running.credentials_entry and self.options.credentials is not None:
                self.options.credentials.remove(running.credentials_entry)

    async def _start(self, key: Key, pod: Object) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        ip = self._address_for(pod)
        directory = self.options.pods_dir / f"{key[0]}_{key[1]}_{meta['uid'][:8]}"
        facts = {
            **self.options.settings,
            "pod_ip": ip,
            "pod_name": key[1],
            "namespace": key[0],
            "service_account": spec.get("serviceAccountName") or "default",
            "labels": ",".join(f"{k}={v}" for k, v in sorted((meta.get("labels") or {}).items())),
            "ports": _ports(spec),
            "pod_dir": str(directory),
        }
        entry = self._hand_out_socket(key, pod, facts)
        downward = _downward(pod, ip, self.options.address)
        proxied = _has_sidecar(spec) and not _intercepted(spec)
        containers, waiting, probes = [], {}, {}
        for group, init in (("initContainers", True), ("containers", False)):
            for container in spec.get(group) or []:
                sidecar = container["name"] == PROXY
                try:
                    program = self.options.images.resolve(str(container.get("image") or ""))
                    env = _env(container, downward)
                    argv, env = program.command(
                        container.get("args"), env, facts, container.get("command")
                    )
                except UnknownImage as error:
                    waiting[container["name"]] = ("ErrImagePull", str(error))
                    continue
                except (KeyError, ValueError) as error:
                    waiting[container["name"]] = ("CreateContainerConfigError", str(error))
                    continue
                if proxied and not init and not sidecar:
                    # No capture: the app reaches the mesh through its sidecar as HTTP proxy.
                    env.setdefault("http_proxy", f"http://{ip}:{OUTBOUND_PORT}")
                user, group_id = _identity(spec, container, program)
                if user not in (None, 0) and sidecar:
                    uid, gid = int(user), int(group_id or 0)
                    directory.mkdir(parents=True, exist_ok=True)
                    why = containerfiles.unreachable(directory, uid, gid)
                    if not why and "sds_socket" in facts:
                        why = containerfiles.unreachable(
                            pathlib.Path(facts["sds_socket"]).parent.parent, uid, gid
                        )
                    if why:
                        waiting[container["name"]] = ("CreateContainerConfigError", why)
                        continue
                    try:
                        containerfiles.own_folder(directory, container["name"], uid, gid)
                    except OSError as error:
                        waiting[container["name"]] = ("CreateContainerConfigError", str(error))
                        continue
                containers.append(
                    ContainerSpec(
                        name=container["name"],
                        image=str(container.get("image")),
                        argv=tuple(argv),
                        env=tuple(env.items()),
                        sidecar=sidecar,
                        init=init,
                        user=user,
                        group=group_id,
                    )
                )
                if isinstance(container.get("readinessProbe"), dict):
                    named = {
                        p["name"]: p["containerPort"]
                        for p in container.get("ports") or []
                        if p.get("name")
                    }
                    probes[container["name"]] = Probe(container["readinessProbe"], named)
        running_spec = PodSpec(
            uid=meta["uid"],
            namespace=key[0],
            name=key[1],
            ip=ip,
            containers=tuple(containers),
            restart_policy=RestartPolicy(spec.get("restartPolicy") or "Always"),
            directory=directory,
        )
        self.running[key] = Running(
            meta["uid"], running_spec, probes, waiting, credentials_entry=entry
        )
        log.info("starting pod %s/%s at %s", key[0], key[1], ip)
        self._write_hosts(running_spec)
        if not waiting:
            await self._runtime.start(running_spec)
        await self._write_status(key, pod)

    def _hand_out_socket(self, key: Key, pod: Object, facts: dict[str, str]) -> str | None:
        """Bind the pod's own SDS socket to its service account's identity (the node agent
        serves it nothing else) and tell its sidecar the socket; the entry's name."""
        credentials = self.options.credentials
        containers = (pod.get("spec") or {}).get("containers") or []
        if credentials is None or not any(c.get("name") == PROXY for c in containers):
            return None
        uid = pod["metadata"]["uid"]
        entry = f"{CREDENTIALS_PREFIX}{key[0]}_{key[1]}_{uid[:8]}"
        proxy = next(c for c in containers if c.get("name") == PROXY)
        user, group = _identity(pod.get("spec") or {}, proxy, None)
        socket = credentials.write(
            entry,
            namespace=key[0],
            service_account=facts["service_account"],
            workload=f"{key[0]}/{key[1]}",
            key=uid[:8],
            # The socket is made the proxy's user's (root's when it runs as root).
            owner=(user, group or 0) if user not in (None, 0) else None,
        )
        facts["sds_socket"] = str(socket)
        return entry

    def scrape_targets(self, job: str) -> list[dict[str, Any]]:
        """Prometheus target groups of the running pods, as Istio's Prometheus jobs find them
        on a cluster: `kubernetes-pods` by the pod's `prometheus.io/scrape|port|path`
        annotations (injection points them at the agent's merged 15020), `envoy-stats` every
        container port named `*-envoy-prom` (the sidecar's 15090)."""
        groups = []
        for key, running in sorted(self.running.items()):
            pod = self.pods.cache.get(key) or {}
            meta = pod.get("metadata") or {}
            labels = {
                "namespace": key[0],
                "pod": key[1],
                "app": (meta.get("labels") or {}).get("app", ""),
            }
            for address, path in _scrape_ports(pod, job):
                target = f"{running.spec.ip}:{address}"
                groups.append({"targets": [target], "labels": {**labels, "__metrics_path__": path}})
        return groups

    def _address_for(self, pod: Object) -> str:
        """The pod's address: the one it had (a kubelet that restarted), else the next free
        one after the address given last."""
        first, last = self.options.pod_ips
        taken = {r.spec.ip for r in self.running.values()}
        had = (pod.get("status") or {}).get("podIP")
        if had and _in_range(had, first, last) and had not in taken:
            return str(had)
        others = {
            (p.get("status") or {}).get("podIP") for k, p in self.pods.cache.items() if p is not pod
        }
        found = next_pod_address(first, last, self._last_address, taken | others)
        if found is None:
            raise RuntimeError(
                f"node {self.options.node_name}: no free pod address in {first}-{last}"
            )
        self._last_address = found
        return found

    # Status: probed and compared every sync period, written when it changed.

    async def _sync_status(self, session: aiohttp.ClientSession) -> None:
        while True:
            try:
                await self._sync_once(session)
            except (ApiException, aiohttp.ClientError, OSError) as error:
                log.warning("status sync: %s", error)
            await asyncio.sleep(self.options.sync_period)

    async def _sync_once(self, session: aiohttp.ClientSession) -> None:
        now = time.time()
        for key, running in list(self.running.items()):
            statuses = {s.name: s for s in self._runtime.status(running.uid)}
            due = []
            for name, probe in running.probes.items():
                status = statuses.get(name)
                if status is None or status.state != State.RUNNING:
                    probe.reset()
                elif probe.due(status.started_at, now):
                    due.append(probe.run(running.spec.ip, session))
            await asyncio.gather(*due)
            pod = self.pods.get(*key)
            if pod is not None and not pod["metadata"].get("deletionTimestamp"):
                try:
                    await self._write_status(key, pod)
                except (ApiException, aiohttp.ClientError) as error:
                    log.warning("pod %s/%s: status not written: %s", *key, error)

    def status_of(self, key: Key, pod: Object) -> dict[str, Any]:
        running = self.running[key]
        statuses = {s.name: s for s in self._runtime.status(running.uid)}
        spec = pod.get("spec") or {}
        entries = []
        for container in spec.get("containers") or []:
            name = container["name"]
            probe = running.probes.get(name)
            state = statuses.get(name)
            ready = (
                state is not None
                and state.state == State.RUNNING
                and (probe is None or probe.ready)
            )
            entries.append(
                podstatus.container_status(container, state, ready, running.waiting.get(name))
            )
        init_entries = [
            podstatus.container_status(
                c, statuses.get(c["name"]), False, running.waiting.get(c["name"])
            )
            for c in spec.get("initContainers") or []
        ]
        initialized = all(
            (e["state"].get("terminated") or {}).get("exitCode", 1) == 0 for e in init_entries
        )
        ready = bool(entries) and all(e["ready"] for e in entries)
        previous = (pod.get("status") or {}).get("conditions") or []
        status: dict[str, Any] = {
            "phase": podstatus.phase(spec.get("restartPolicy") or "Always", entries),
            "conditions": podstatus.conditions(previous, ready, initialized, not running.waiting),
            "hostIP": self.options.address,
            "hostIPs": [{"ip": self.options.address}],
            "podIP": running.spec.ip,
            "podIPs": [{"ip": running.spec.ip}],
            "startTime": podstatus.timestamp(running.started_at),
            "containerStatuses": entries,
            "qosClass": (pod.get("status") or {}).get("qosClass") or "BestEffort",
        }
        if init_entries:
            status["initContainerStatuses"] = init_entries
        return status

    async def _write_status(self, key: Key, pod: Object) -> None:
        running = self.running.get(key)
        if running is None:
            return
        status = self.status_of(key, pod)
        if status == running.written:
            return
        meta = pod["metadata"]
        await self._core.patch_namespaced_pod_status(
            meta["name"], meta.get("namespace", "default"), {"status": status}
        )
        running.written = status


def _has_sidecar(spec: Mapping[str, Any]) -> bool:
    return any(c.get("name") == PROXY for c in spec.get("containers") or [])


def _intercepted(spec: Mapping[str, Any]) -> bool:
    """Whether injection gave the pod Istio's capture (its sidecar told REDIRECT or TPROXY)."""
    for container in spec.get("containers") or []:
        if container.get("name") == PROXY:
            for variable in container.get("env") or []:
                if variable.get("name") == INTERCEPTION_ENV:
                    return variable.get("value") in CAPTURED
    return False


def _identity(
    spec: Mapping[str, Any], container: Mapping[str, Any], program: Program | None
) -> tuple[int | None, int | None]:
    """(uid, gid): the container's securityContext over the pod's, else the image's USER.

    The sidecar runs as injection says, Istio's istio-proxy 1337:1337; its SDS socket is
    made that user's by the node agent (the entry's uid/gid), and Istio's iptables rules
    leave its traffic alone by that uid and gid."""
    pod_context = spec.get("securityContext") or {}
    context = container.get("securityContext") or {}
    user = context.get("runAsUser", pod_context.get("runAsUser", program.user if program else None))
    group = context.get("runAsGroup", pod_context.get("runAsGroup"))
    # A uid without a gid keeps group 0, as a container runtime gives an image's `USER n`
    # that /etc/passwd does not name.
    return (
        int(user) if user is not None else None,
        int(group) if group is not None else None,
    )


def _scrape_ports(pod: Object, job: str) -> list[tuple[str, str]]:
    """(port, metrics path) of the pod that Prometheus' `job` scrapes."""
    if job == "kubernetes-pods":
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        port = annotations.get("prometheus.io/port")
        if annotations.get("prometheus.io/scrape") != "true" or not port:
            return []
        return [(str(port), annotations.get("prometheus.io/path") or "/metrics")]
    containers = (pod.get("spec") or {}).get("containers") or []
    return [
        (str(port["containerPort"]), "/stats/prometheus")
        for container in containers
        for port in container.get("ports") or []
        if str(port.get("name") or "").endswith("-envoy-prom") and port.get("containerPort")
    ]


def next_pod_address(first: str, last: str, after: str, used: Iterable[str | None]) -> str | None:
    """The first free address of first..last after `after`, wrapping round (None: all used).

    As the host-local IPAM plugin of a Kubernetes node allocates. A pod made again at once
    does not get the address its predecessor had: its peers' neighbour caches still hold the
    old pod's MAC for seconds, and their sidecars' kept-alive connections to the old pod
    (gone without a reset) would hang on the new one's address until they time out."""
    low, high = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
    start = (
        int(ipaddress.IPv4Address(after)) + 1 if after and _in_range(after, first, last) else low
    )
    busy = set(used)
    size = high - low + 1
    for offset in range(size):
        candidate = str(ipaddress.IPv4Address(low + (start - low + offset) % size))
        if candidate not in busy:
            return candidate
    return None


def _in_range(address: str, first: str, last: str) -> bool:
    value = ipaddress.IPv4Address(address)
    return ipaddress.IPv4Address(first) <= value <= ipaddress.IPv4Address(last)


def _key(obj: Object) -> Key:
    meta = obj.get("metadata") or {}
    return (str(meta.get("namespace") or ""), str(meta.get("name") or ""))


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _ports(spec: Mapping[str, Any]) -> str:
    """The app containers' ports, `name=port,...` (a port without a name by its number)."""
    pairs = []
    for container in spec.get("containers") or []:
        if container.get("name") == PROXY:
            continue
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            pairs.append(f"{port.get('name') or number}={number}")
    return ",".join(pairs)


def _downward(pod: Object, ip: str, host_ip: str) -> dict[str, str]:
    """The downward API's fields a container's env may name (fieldRef.fieldPath)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    fields = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName") or "default",
        "status.podIP": ip,
        "status.podIPs": ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    for kind in ("labels", "annotations"):
        for k, v in (meta.get(kind) or {}).items():
            fields[f"metadata.{kind}['{k}']"] = v
    return fields


def _env(container: Mapping[str, Any], downward: Mapping[str, str]) -> dict[str, str]:
    env = {}
    for variable in container.get("env") or []:
        name = variable["name"]
        if "value" in variable:
            env[name] = str(variable.get("value") or "")
            continue
        source = variable.get("valueFrom") or {}
        field = (source.get("fieldRef") or {}).get("fieldPath")
        if field is not None:
            if field not in downward:
                raise ValueError(f"env {name}: field {field} is not supported")
            env[name] = downward[field]
        elif source:
            raise ValueError(f"env {name}: only value and fieldRef are supported here")
        else:
            env[name] = ""
    return env
