"""Test support for the node agent (importable by any test, not conftest-only).

- `run_async`: runs an async test in a fresh loop, bounded, failing on leaked tasks;
- `FakeClock`: the agent's clock on fake time (`advance()` wakes sleepers in order);
- `node`, `secrets_of`: an Envoy node naming a workload, the Secrets of a response; the SDS
  client itself is pkg/xds's `XdsDriver` (`sds_driver` opens one on the agent's socket);
- `write_workload`: a workload-credentials entry, written as a kubelet writes it;
  `vouched_peer`: the peer a workload's socket gives its streams (for in-memory streams);
- `EnvoyProcess` and `sds_envoy_bootstrap`: the real Envoy with a TLS listener whose
  certificate and trust bundle come from the agent over SDS;
- `TlsClient`: a Python `ssl` client with its own certificate, for that listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import os
import pathlib
import ssl
import tempfile
from collections.abc import AsyncIterator
from typing import Any

from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import json_format, struct_pb2

from pkg.testing.aio import run_async as run_async
from pkg.testing.envoy import EnvoyError as EnvoyError
from pkg.testing.envoy import EnvoyProcess as EnvoyProcess
from pkg.testing.envoy import envoy_path as envoy_path
from pkg.testing.wait import eventually as eventually
from pkg.xds.peer import Peer
from pkg.xds.testing import XdsDriver
from security.nodeagent import bootstrap
from security.nodeagent.agent import NodeAgent
from security.nodeagent.server import socket_target

# Async tests without a plugin.


# Fake time.


class FakeClock:
    """A `Clock` whose time moves only when the test says so."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), future))
        await future

    def deadlines(self) -> list[float]:
        """When the current sleepers wake (sorted)."""
        return sorted(d for d, _, f in self._sleepers if not f.done())

    async def settle(self, rounds: int = 50) -> None:
        """Let every runnable task run until it blocks again."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking sleepers one deadline at a time, in order."""
        target = self._now + seconds
        await self.settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            if future.done():
                continue
            self._now = max(self._now, deadline)
            future.set_result(None)
            await self.settle()
        self._now = target
        await self.settle()

    def jump(self, seconds: float) -> None:
        """A suspended machine resuming: the wall clock moves on by `seconds`, but sleepers
        measure monotonic time, which stood still, so each still has its whole delay ahead."""
        self._now += seconds
        self._sleepers = [(d + seconds, n, f) for d, n, f in self._sleepers]
        heapq.heapify(self._sleepers)

    async def advance_to(self, when: float) -> None:
        await self.advance(max(when - self._now, 0.0))


# SDS client driver.


def node(
    namespace: str | None = "default",
    service_account: str | None = "default",
    node_id: str = "sidecar~127.0.1.1~test.default~default.svc.cluster.local",
) -> base_pb2.Node:
    metadata: dict[str, Any] = {}
    if namespace is not None:
        metadata["NAMESPACE"] = namespace
    if service_account is not None:
        metadata["SERVICE_ACCOUNT"] = service_account
    result = base_pb2.Node(id=node_id, cluster="test")
    result.metadata.CopyFrom(json_format.ParseDict(metadata, struct_pb2.Struct()))
    return result


def sds_driver(
    socket_path: pathlib.Path, node: base_pb2.Node
) -> contextlib.AbstractAsyncContextManager[XdsDriver]:
    """An SDS client on the agent's Unix socket (the node in every request, as Envoy's)."""
    return XdsDriver.sds(socket_target(socket_path), node)


def write_workload(
    folder: pathlib.Path, name: str, identity: str, socket: pathlib.Path, workload: str = ""
) -> pathlib.Path:
    """One entry of the workload-credentials folder, written whole then renamed into place."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"{name}.json"
    temporary = folder / f".{name}.json.tmp"
    entry = {"identity": identity, "socket": str(socket), "workload": workload or name}
    temporary.write_text(json.dumps(entry))
    temporary.replace(path)
    return path


def vouched_peer(identity: str, address: str = "memory") -> Peer:
    """What a workload's own socket vouches for: `identity` and nothing else."""
    return Peer(address=address, identities=(identity,))


def secrets_of(response: discovery_pb2.DiscoveryResponse) -> dict[str, secret_pb2.Secret]:
    """The Secrets of a response, by name."""
    result = {}
    for packed in response.resources:
        secret = secret_pb2.Secret()
        if not packed.Unpack(secret):
            raise AssertionError(f"resource of type {packed.type_url} is not a Secret")
        result[secret.name] = secret
    return result


# The real Envoy.


TLS_LISTENER = "tls"
ENVOY_BODY = "hello from envoy\n"


def sds_envoy_bootstrap(
    socket_path: pathlib.Path,
    *,
    namespace: str,
    service_account: str,
    node_id: str = "sidecar~127.0.0.1~test.default~default.svc.cluster.local",
) -> dict[str, Any]:
    """Admin and one TLS listener (mTLS required) on 127.0.0.1 with ephemeral ports; the
    listener's certificate and trust bundle come from the agent over SDS."""
    manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
        ".v3.HttpConnectionManager",
        "stat_prefix": "tls",
        "route_config": {
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [
                        {
                            "match": {"prefix": "/"},
                            "direct_response": {
                                "status": 200,
                                "body": {"inline_string": ENVOY_BODY},
                            },
                        }
                    ],
                }
            ]
        },
        "http_filters": [
            {
                "name": "envoy.filters.http.router",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                },
            }
        ],
    }
    tls_context = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
        ".DownstreamTlsContext",
        "require_client_certificate": True,
        "common_tls_context": bootstrap.common_tls_context(),
    }
    return {
        "node": {
            "id": node_id,
            "cluster": "test",
            "metadata": {"NAMESPACE": namespace, "SERVICE_ACCOUNT": service_account},
        },
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "layered_runtime": {
            "layers": [
                {
                    "name": "static",
                    "static_layer": {"envoy.features.fail_on_any_deprecated_feature": True},
                }
            ]
        },
        "static_resources": {
            "clusters": [bootstrap.sds_cluster(socket_path)],
            "listeners": [
                {
                    "name": TLS_LISTENER,
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": manager,
                                }
                            ],
                            "transport_socket": {
                                "name": "envoy.transport_sockets.tls",
                                "typed_config": tls_context,
                            },
                        }
                    ],
                }
            ],
        },
    }


# A TLS client.


class TlsClient:
    """HTTPS over mTLS to Envoy: trusts `roots_pem`, presents `cert_pem`/`key_pem` (if given).

    The server's name is not checked (workload certificates carry only a SPIFFE URI); its
    chain is, against the roots.
    """

    def __init__(
        self, roots_pem: bytes, cert_pem: bytes | None = None, key_pem: bytes | None = None
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=roots_pem.decode())
        if cert_pem is not None and key_pem is not None:
            with tempfile.TemporaryDirectory() as directory:
                cert_path = os.path.join(directory, "cert.pem")
                key_path = os.path.join(directory, "key.pem")
                pathlib.Path(cert_path).write_bytes(cert_pem)
                pathlib.Path(key_path).write_bytes(key_pem)
                context.load_cert_chain(cert_path, key_path)
        self.context = context

    async def get(
        self, host: str, port: int, path: str = "/", timeout: float = 5.0
    ) -> tuple[int, str, x509.Certificate]:
        """(status, body, the server's leaf certificate) of one request on a new connection."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=self.context, server_hostname="workload"
            )
            try:
                der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                writer.write(
                    f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
                )
                await writer.drain()
                data = await reader.read()
            finally:
                writer.close()
                with contextlib.suppress(ssl.SSLError, ConnectionError):
                    await writer.wait_closed()
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        status = int(head.split(" ", 2)[1])
        return status, body, x509.load_der_x509_certificate(der)


@contextlib.asynccontextmanager
async def running(agent: NodeAgent) -> AsyncIterator[NodeAgent]:
    """`agent` running in this loop until the block ends; a start-up failure is raised here
    rather than waited out."""
    stop, started = asyncio.Event(), asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(agent.run(stop, started=started), name="agent")
        async with asyncio.timeout(10):
            await asyncio.wait(
                {task, tasks.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED
            )
        if task.done():
            task.result()
        try:
            yield agent
        finally:
            stop.set()
