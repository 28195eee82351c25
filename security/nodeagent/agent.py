"""The node agent: the secret cache, one SDS socket per workload, the status server.

`NodeAgent.run(stop)` owns everything in one TaskGroup: it starts the cache, then follows the
workload-credentials folder (workloads.py), serving each workload on its own socket (dir 0700,
socket 0600; sockets.py) as its entry appears and until it goes; on a cluster
(`--node-name`) it also follows the node's pods (pods.py), serving each injected pod on its
own socket the same way; then the status endpoint. When `stop` is set it ends the SDS
streams, stops the servers and removes the sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import random
from collections.abc import AsyncGenerator

from security.nodeagent.cache import CacheOptions, SecretCache
from security.nodeagent.caclient import CaClient, CaClientOptions, Signer
from security.nodeagent.clock import Clock
from security.nodeagent.kubepods import Listed, NodePods, PodClient, PodEvent
from security.nodeagent.options import NodeAgentOptions
from security.nodeagent.pods import NodePodWatcher, PodsOptions
from security.nodeagent.server import SdsServer
from security.nodeagent.sockets import WorkloadSockets
from security.nodeagent.status import StatusServer
from security.nodeagent.workloads import WorkloadFolder

log = logging.getLogger("security.nodeagent")

STOP_GRACE = 2.0  # seconds for open streams to end on shutdown


class NodeAgent:
    def __init__(
        self,
        *,
        options: NodeAgentOptions,
        signer: Signer | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        pod_client: PodClient | None = None,
    ) -> None:
        """`signer` replaces the gRPC CA client (tests); `clock` the system clock;
        `pod_client` the Kubernetes client the node's pods are read with."""
        self.options = options
        root = options.ca_root.read_bytes()  # fail at start, not at the first stream
        if signer is None:
            signer = CaClient(
                options=CaClientOptions(
                    address=options.ca_address,
                    root_path=options.ca_root,
                    token_path=options.token_file,
                    server_name=options.ca_server_name,
                )
            )
        self.cache = SecretCache(
            signer=signer,
            options=CacheOptions(
                ttl=options.ttl,
                grace_ratio=options.grace_ratio,
                # Istio's 1% jitter, less for a grace ratio near either end.
                grace_jitter=min(0.01, options.grace_ratio / 2, (1 - options.grace_ratio) / 2),
                key_type=options.key_type,
                fallback_root_pem=root,
            ),
            clock=clock,
            rng=rng,
        )
        self.sds = SdsServer(cache=self.cache, trust_domain=options.trust_domain)
        self.workloads = WorkloadFolder(
            options.workloads_path, trust_domain=options.trust_domain, reserved=options.reserved
        )
        self.sockets = WorkloadSockets(self.sds, grace=STOP_GRACE)
        self._pod_client = pod_client
        self.pods: NodePodWatcher | None = None
        if options.node_name is not None and options.pod_sockets_dir is not None:
            self.pods = NodePodWatcher(
                client=self._connecting_client(options.node_name),
                options=PodsOptions(
                    node=options.node_name,
                    sockets_dir=options.pod_sockets_dir,
                    trust_domain=options.trust_domain,
                    reserved=options.reserved,
                ),
                served=self.sockets.served,
            )
        host, port = options.status_host_port
        self.status = StatusServer(
            host=host,
            port=port,
            cache=self.cache,
            sds=self.sds,
            ready=self.is_ready,
            workloads=self.workloads_status,
        )
        self._serving = False

    @property
    def workloads_path(self) -> pathlib.Path:
        return self.options.workloads_path

    def _connecting_client(self, node: str) -> PodClient:
        if self._pod_client is not None:
            return self._pod_client
        return _Connecting(node, self.options.kubeconfig)

    def workloads_status(self) -> dict[str, object]:
        status: dict[str, object] = {
            "folder": str(self.workloads.folder),
            "served": [b.to_json() for b in self.sockets.served()],
            "refused": dict(sorted(self.workloads.errors.items())),
        }
        if self.pods is not None:
            status["pods"] = self.pods.status()
        return status

    def is_ready(self) -> bool:
        return self._serving

    async def run(self, stop: asyncio.Event, *, started: asyncio.Event | None = None) -> None:
        """Serve until `stop` is set; `started` is set once SDS and status are listening."""
        self.workloads.prepare()
        async with asyncio.TaskGroup() as tasks:
            cache_started = asyncio.Event()
            cache_task = tasks.create_task(self.cache.run(started=cache_started), name="cache")
            await cache_started.wait()
            watching = asyncio.Event()
            watch_task = tasks.create_task(
                self.workloads.watch(self.sockets.apply, started=watching), name="workloads"
            )
            pods_task = None
            if self.pods is not None:
                self.pods.prepare()
                # Not waited for: an API server that is down must not keep the folder's
                # workloads (and /ready) waiting; the pods are served once listed.
                pods_task = tasks.create_task(self.pods.run(self.sockets.apply), name="pods")
            try:
                await watching.wait()  # the first scan's workloads are served
                await self.status.start()
                self._serving = True
                log.info(
                    "node agent serving SDS to %d workloads of %s, status on http://%s:%d, CA %s",
                    len(self.sockets.served()),
                    self.workloads.folder,
                    self.options.status_host_port[0],
                    self.status.port,
                    self.options.ca_address,
                )
                if started is not None:
                    started.set()
                await stop.wait()
                log.info("node agent stopping")
            finally:
                self._serving = False
                for task in (watch_task, pods_task):
                    if task is None:
                        continue
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await self.sds.stop(STOP_GRACE)
                await self.sockets.close()
                await self.status.stop()
                cache_task.cancel()


class _Connecting:
    """The node's PodClient, connecting (reading its credentials) on first use, inside the
    loop that runs it; a connection that fails is KubeUnavailable, retried by the watcher."""

    def __init__(self, node: str, kubeconfig: str | None) -> None:
        self._node = node
        self._kubeconfig = kubeconfig
        self._client: NodePods | None = None

    async def _connected(self) -> NodePods:
        if self._client is None:
            self._client = await NodePods.connect(self._node, self._kubeconfig)
        return self._client

    async def list(self) -> Listed:
        return await (await self._connected()).list()

    async def watch(self, resource_version: str) -> AsyncGenerator[PodEvent, None]:
        async for event in (await self._connected()).watch(resource_version):
            yield event

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
