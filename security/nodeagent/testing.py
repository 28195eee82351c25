"""Test support for the node agent (importable by any test, not conftest-only).

- `run_async`: runs an async test in a fresh loop, bounded, failing on leaked tasks;
- `FakeClock`: the agent's clock on fake time (`advance()` wakes sleepers in order);
- `SdsDriver`: an SDS client that reads like the protocol (`request`, `expect_response`,
  `expect_no_response`, `ack`, `nack`), over the Unix socket (`SdsDriver.grpc`) or straight
  into an SdsServer with no sockets (`SdsDriver.memory`);
- `EnvoyProcess` and `sds_envoy_bootstrap`: the real Envoy with a TLS listener whose
  certificate and trust bundle come from the agent over SDS;
- `TlsClient`: a Python `ssl` client with its own certificate, for that listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import os
import pathlib
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import grpc
from cryptography import x509
from envoy.config.core.v3 import base_pb2
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc
from google.protobuf import json_format, struct_pb2
from google.rpc import status_pb2

from pkg.testing.aio import run_async as run_async
from pkg.testing.envoy import EnvoyError as EnvoyError
from pkg.testing.envoy import EnvoyProcess as EnvoyProcess
from pkg.testing.envoy import envoy_path as envoy_path
from security.nodeagent import bootstrap
from security.nodeagent.resources import SECRET_TYPE
from security.nodeagent.server import SdsServer, socket_target

# Async tests without a plugin.


async def eventually(
    condition: Callable[[], bool], *, timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll `condition` until true, at most `timeout` seconds (real time)."""
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"{what} not reached within {timeout}s") from None


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


class MemoryTransport:
    """A stream made of two queues: the SdsServer end of an `SdsDriver.memory` stream."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[discovery_pb2.DiscoveryRequest | None] = asyncio.Queue()
        self.responses: asyncio.Queue[discovery_pb2.DiscoveryResponse] = asyncio.Queue()

    async def recv(self) -> discovery_pb2.DiscoveryRequest | None:
        return await self.requests.get()

    async def send(self, response: discovery_pb2.DiscoveryResponse) -> None:
        await self.responses.put(response)


def secrets_of(response: discovery_pb2.DiscoveryResponse) -> dict[str, secret_pb2.Secret]:
    """The Secrets of a response, by name."""
    result = {}
    for packed in response.resources:
        secret = secret_pb2.Secret()
        if not packed.Unpack(secret):
            raise AssertionError(f"resource of type {packed.type_url} is not a Secret")
        result[secret.name] = secret
    return result


class SdsDriver:
    """A scripted SDS client, keeping the last accepted version as Envoy does."""

    def __init__(
        self,
        send: Callable[[discovery_pb2.DiscoveryRequest], Awaitable[None]],
        recv: Callable[[], Awaitable[discovery_pb2.DiscoveryResponse | None]],
        node: base_pb2.Node,
        close_send: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send
        self._recv = recv
        self._close_send = close_send
        self.node = node
        self.accepted = ""
        self.names: list[str] = []
        self._pending: asyncio.Future[discovery_pb2.DiscoveryResponse | None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def grpc(cls, socket_path: pathlib.Path, node: base_pb2.Node) -> AsyncIterator[SdsDriver]:
        """A driver on a real gRPC stream over the agent's Unix socket."""
        async with grpc.aio.insecure_channel(socket_target(socket_path)) as channel:
            call = sds_pb2_grpc.SecretDiscoveryServiceStub(channel).StreamSecrets()

            async def recv() -> discovery_pb2.DiscoveryResponse | None:
                response = await call.read()
                return None if response is grpc.aio.EOF else response

            driver = cls(call.write, recv, node, close_send=call.done_writing)
            try:
                yield driver
            finally:
                await driver._drop_pending()
                call.cancel()

    @classmethod
    @contextlib.asynccontextmanager
    async def memory(cls, server: SdsServer, node: base_pb2.Node) -> AsyncIterator[SdsDriver]:
        """A driver wired straight into `server.serve()`, no sockets."""
        transport = MemoryTransport()

        async def recv() -> discovery_pb2.DiscoveryResponse | None:
            get = asyncio.ensure_future(transport.responses.get())
            try:
                await asyncio.wait({get, serving}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not get.done():
                    get.cancel()
            if get.done() and not get.cancelled():
                return get.result()
            serving.result()  # raises what ended the stream
            return None

        async def close_send() -> None:
            await transport.requests.put(None)

        async with asyncio.TaskGroup() as tasks:
            serving = tasks.create_task(server.serve(transport, peer="memory"), name="sds-memory")
            driver = cls(transport.requests.put, recv, node, close_send=close_send)
            try:
                yield driver
            finally:
                await driver._drop_pending()
                await close_send()

    async def close_send(self) -> None:
        if self._close_send is not None:
            await self._close_send()

    async def request(
        self,
        names: Sequence[str] = ("default",),
        *,
        nonce: str = "",
        version: str | None = None,
        error: str | None = None,
        type_url: str = SECRET_TYPE,
        with_node: bool = True,
    ) -> None:
        """Send a request; the node goes in every request, as Envoy's SDS client does."""
        request = discovery_pb2.DiscoveryRequest(
            type_url=type_url,
            resource_names=list(names),
            response_nonce=nonce,
            version_info=self.accepted if version is None else version,
        )
        if error is not None:
            request.error_detail.CopyFrom(status_pb2.Status(code=13, message=error))
        if with_node:
            request.node.CopyFrom(self.node)
        self.names = list(names)
        await self._send(request)

    async def _next(self, timeout: float) -> discovery_pb2.DiscoveryResponse | None:
        # A receive cut short by a timeout stays pending, so no response is ever lost.
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._recv())
        async with asyncio.timeout(timeout):
            response = await asyncio.shield(self._pending)
        self._pending = None
        return response

    async def _drop_pending(self) -> None:
        if self._pending is not None:
            self._pending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pending
            self._pending = None

    async def expect_response(self, timeout: float = 10.0) -> discovery_pb2.DiscoveryResponse:
        try:
            response = await self._next(timeout)
        except TimeoutError:
            raise AssertionError(f"no SDS response within {timeout}s") from None
        if response is None:
            raise AssertionError("the SDS stream ended (wanted a response)")
        return response

    async def expect_no_response(self, timeout: float = 0.2) -> None:
        """Nothing arrives within `timeout` (only a negative check can need a wait)."""
        try:
            response = await self._next(timeout)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected SDS response: {response}")

    async def expect_end(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            response = await self._next(timeout)
        if response is not None:
            raise AssertionError(f"wanted the stream to end, got version {response.version_info}")

    async def ack(self, response: discovery_pb2.DiscoveryResponse) -> None:
        self.accepted = response.version_info
        await self.request(self.names, nonce=response.nonce)

    async def nack(self, response: discovery_pb2.DiscoveryResponse, message: str) -> None:
        await self.request(self.names, nonce=response.nonce, error=message)


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
