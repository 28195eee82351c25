"""The node agent: the secret cache, the SDS server on its Unix socket, the status server.

`NodeAgent.run(stop)` owns everything in one TaskGroup: it starts the cache, then serves SDS
on the socket (dir 0700, socket 0600), then the status endpoint; when `stop` is set it ends
the SDS streams, stops the servers and removes the socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import random

from pkg.grpcserver.server import STREAMS, new_server
from security.nodeagent.cache import CacheOptions, SecretCache
from security.nodeagent.caclient import CaClient, CaClientOptions, Signer
from security.nodeagent.clock import Clock
from security.nodeagent.options import NodeAgentOptions
from security.nodeagent.server import SdsServer, prepare_socket_path, socket_target
from security.nodeagent.status import StatusServer

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
    ) -> None:
        """`signer` replaces the gRPC CA client (tests); `clock` the system clock."""
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
        host, port = options.status_host_port
        self.status = StatusServer(
            host=host, port=port, cache=self.cache, sds=self.sds, ready=self.is_ready
        )
        self._serving = False

    @property
    def socket_path(self) -> pathlib.Path:
        return self.options.socket_path

    def is_ready(self) -> bool:
        return self._serving

    async def run(self, stop: asyncio.Event, *, started: asyncio.Event | None = None) -> None:
        """Serve until `stop` is set; `started` is set once SDS and status are listening."""
        path = self.options.socket_path
        prepare_socket_path(path)
        async with asyncio.TaskGroup() as tasks:
            cache_started = asyncio.Event()
            cache_task = tasks.create_task(self.cache.run(started=cache_started), name="cache")
            await cache_started.wait()
            server = new_server(STREAMS)
            self.sds.add_to(server)
            try:
                server.add_insecure_port(socket_target(path))
                await server.start()
                # gRPC creates the socket with the umask's mode; the 0700 directory already
                # keeps other users out, this makes the socket itself say so too.
                path.chmod(0o600)
                await self.status.start()
                self._serving = True
                log.info(
                    "node agent serving SDS on %s, status on http://%s:%d, CA %s",
                    path,
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
                await self.sds.stop(STOP_GRACE)
                await server.stop(STOP_GRACE)
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                await self.status.stop()
                cache_task.cancel()
