"""The SDS server: Envoy's SecretDiscoveryService (state of the world) over a Unix socket.

Each stream names its workload in the Envoy node of its first request; the stream then
watches that identity in the secret cache and gets `default` and `ROOTCA` (see resources.py)
whenever they change: rotation reaches every open stream of the identity with no Envoy
restart. As in pilot's ADS server, a reader task classifies requests (stream.py) and a single
writer task sends, so requests and pushes never interleave on the stream.

Lifecycle, owned by the caller:

    sds = SdsServer(cache=cache, trust_domain="cluster.local")
    sds.add_to(grpc_server)              # before grpc_server.start()
    ...
    await sds.stop(grace)                # end every stream cleanly
    await grpc_server.stop(grace)
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import pathlib
import socket
import stat
from typing import Any, Protocol

import grpc
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from security.nodeagent import resources
from security.nodeagent.cache import SecretCache
from security.nodeagent.identity import Identity, InvalidIdentityError, identity_from_node
from security.nodeagent.stream import Action, StreamState

log = logging.getLogger("security.nodeagent")

# Linux's sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
DEFAULT_FETCH_TIMEOUT = 15.0


class Transport(Protocol):
    """The two halves of a stream; gRPC in production, two queues in tests."""

    async def recv(self) -> discovery_pb2.DiscoveryRequest | None:
        """The next request, or None once the client closed its side."""
        ...

    async def send(self, response: discovery_pb2.DiscoveryResponse) -> None: ...


class InvalidStreamError(ValueError):
    """The first request does not open an SDS stream we can serve."""


@dataclasses.dataclass
class Counters:
    streams_opened: int = 0
    streams_closed: int = 0
    streams_rejected: int = 0
    responses: int = 0
    pushes: int = 0  # responses sent because content changed, not because a request asked
    acks: int = 0
    nacks: int = 0


def _content(
    cache: SecretCache, identity: Identity, names: frozenset[str]
) -> list[secret_pb2.Secret] | None:
    """The known secrets among `names`; None while one of them is not available yet."""
    result = []
    if resources.WORKLOAD_SECRET in names:
        secret = cache.workload_secret(identity)
        if secret is None:
            return None
        result.append(resources.workload_secret(secret.chain.certificate_chain_pem, secret.key_pem))
    if resources.ROOT_SECRET in names:
        bundle = cache.root_bundle()
        if bundle is None:
            return None
        result.append(resources.root_secret(bundle))
    return result


class Connection:
    """One SDS stream of one Envoy."""

    def __init__(
        self,
        conn_id: str,
        identity: Identity,
        transport: Transport,
        cache: SecretCache,
        counters: Counters,
        peer: str = "",
    ) -> None:
        self.conn_id = conn_id
        self.identity = identity
        self.peer = peer
        self.state = StreamState()
        self._transport = transport
        self._cache = cache
        self._counters = counters
        self._wake = asyncio.Event()
        self._closing = False
        self._reader: asyncio.Task[None] | None = None
        self._unknown_logged: set[str] = set()

    def wake(self) -> None:
        """The cache's callback: something this stream may serve changed."""
        self._wake.set()

    def handle_request(self, request: discovery_pb2.DiscoveryRequest) -> None:
        decision = self.state.on_request(request)
        if request.HasField("error_detail"):
            self._counters.nacks += 1
            log.warning(
                "SDS NACK from %s (%s), nonce %s, still running version %r: %s",
                self.identity,
                self.conn_id,
                request.response_nonce,
                request.version_info,
                request.error_detail.message,
            )
        elif decision.action is Action.ACK:
            self._counters.acks += 1
        elif decision.action is Action.INVALID:
            log.warning("SDS stream %s: ignoring a request: %s", self.conn_id, decision.reason)
        for name in sorted(self.state.names - resources.KNOWN_SECRETS - self._unknown_logged):
            self._unknown_logged.add(name)
            log.warning(
                "SDS stream %s asks for secret %r; only %s are served",
                self.conn_id,
                name,
                sorted(resources.KNOWN_SECRETS),
            )
        if decision.respond:
            self._wake.set()

    async def run(self) -> None:
        """Serve until the client closes its side or `close()` is called."""
        async with asyncio.TaskGroup() as tasks:
            self._reader = tasks.create_task(self._read(), name=f"sds-read {self.conn_id}")
            tasks.create_task(self._write(), name=f"sds-write {self.conn_id}")

    def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._reader is not None:
            self._reader.cancel()

    async def _read(self) -> None:
        while True:
            request = await self._transport.recv()
            if request is None:
                self._closing = True
                self._wake.set()
                return
            self.handle_request(request)

    async def _write(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            names = self.state.names & resources.KNOWN_SECRETS
            secrets = _content(self._cache, self.identity, names)
            if not secrets:
                continue  # nothing servable yet: the cache wakes us when it is
            version = resources.version_of(secrets)
            if not self.state.should_send(version):
                continue
            pushed = not self.state.owed
            response = self.state.record_sent(secrets, version)
            await self._transport.send(response)
            self._counters.responses += 1
            self._counters.pushes += pushed
            log.info(
                "SDS %s %s to %s (%s): version %s, nonce %s",
                "pushed" if pushed else "sent",
                ",".join(sorted(s.name for s in secrets)),
                self.identity,
                self.conn_id,
                version,
                response.nonce,
            )

    def status(self) -> dict[str, Any]:
        state = self.state
        return {
            "id": self.conn_id,
            "identity": self.identity.spiffe_id,
            "peer": self.peer,
            "names": sorted(state.names),
            "version_sent": state.version_sent,
            "version_acked": state.version_acked,
            "responses": state.responses,
            "acks": state.acks,
            "nacks": state.nacks,
            "last_nack": None if state.last_nack is None else dataclasses.asdict(state.last_nack),
        }


class SdsServer:
    def __init__(self, *, cache: SecretCache, trust_domain: str) -> None:
        self._cache = cache
        self._trust_domain = trust_domain
        self._connections: dict[str, Connection] = {}
        self._ids = itertools.count(1)
        self._closing = False
        self._streams_done = asyncio.Event()
        self._streams_done.set()
        self.counters = Counters()

    def add_to(self, grpc_server: grpc.aio.Server) -> None:
        sds_pb2_grpc.add_SecretDiscoveryServiceServicer_to_server(_SdsServicer(self), grpc_server)

    def identify(self, request: discovery_pb2.DiscoveryRequest) -> Identity:
        """The workload a stream's first request speaks for."""
        if request.type_url != resources.SECRET_TYPE:
            raise InvalidStreamError(
                f"expected type {resources.SECRET_TYPE}, got {request.type_url!r}"
            )
        try:
            return identity_from_node(request.node, self._trust_domain)
        except InvalidIdentityError as error:
            raise InvalidStreamError(str(error)) from None

    async def serve(self, transport: Transport, peer: str = "") -> None:
        """Serve one SDS stream until the client closes it or the server stops.

        Raises InvalidStreamError if the first request does not name a workload.
        """
        if self._closing:
            raise ConnectionRefusedError("the node agent is shutting down")
        first = await transport.recv()
        if first is None:
            return
        try:
            identity = self.identify(first)
        except InvalidStreamError as error:
            self.counters.streams_rejected += 1
            log.warning("refusing SDS stream from %s: %s", peer or "?", error)
            raise
        conn = Connection(
            f"sds-{next(self._ids)}", identity, transport, self._cache, self.counters, peer
        )
        self._connections[conn.conn_id] = conn
        self._streams_done.clear()
        self.counters.streams_opened += 1
        log.info("SDS stream %s opened for %s (node %s)", conn.conn_id, identity, first.node.id)
        self._cache.watch(identity, conn.wake)
        try:
            conn.handle_request(first)
            await conn.run()
        finally:
            self._cache.unwatch(identity, conn.wake)
            del self._connections[conn.conn_id]
            self.counters.streams_closed += 1
            if not self._connections:
                self._streams_done.set()
            log.info("SDS stream %s for %s ended", conn.conn_id, identity)

    async def fetch(
        self, request: discovery_pb2.DiscoveryRequest, timeout: float = DEFAULT_FETCH_TIMEOUT
    ) -> discovery_pb2.DiscoveryResponse:
        """FetchSecrets: one answer, waiting (bounded) for the certificate to be issued."""
        if self._closing:
            raise ConnectionRefusedError("the node agent is shutting down")
        identity = self.identify(request)
        names = frozenset(request.resource_names) & resources.KNOWN_SECRETS
        if not names:
            raise InvalidStreamError(
                f"no servable secret among {list(request.resource_names)}; "
                f"served: {sorted(resources.KNOWN_SECRETS)}"
            )
        changed = asyncio.Event()
        self._cache.watch(identity, changed.set)
        try:
            async with asyncio.timeout(timeout):
                while (secrets := _content(self._cache, identity, names)) is None:
                    await changed.wait()
                    changed.clear()
        finally:
            self._cache.unwatch(identity, changed.set)
        state = StreamState()
        state.names = names
        return state.record_sent(secrets, resources.version_of(secrets))

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new streams and end the open ones, waiting at most `grace` seconds."""
        self._closing = True
        for conn in list(self._connections.values()):
            conn.close()
        try:
            async with asyncio.timeout(grace):
                await self._streams_done.wait()
        except TimeoutError:
            log.warning("SDS streams still open after %.1fs", grace)

    def status(self) -> dict[str, Any]:
        return {
            "counters": dataclasses.asdict(self.counters),
            "streams": [c.status() for c in self._connections.values()],
        }


# The Unix socket.


def prepare_socket_path(path: pathlib.Path) -> None:
    """Make the socket's directory (0700: only this user reaches the socket) and clear a
    stale socket left by a crash; refuse if another agent is listening there."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise ValueError(f"SDS socket path too long for a Unix socket ({MAX_SOCKET_PATH}): {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError:
        path.unlink()  # nobody listens: a leftover
        return
    finally:
        probe.close()
    raise ValueError(f"another process is already serving on {path}")


def socket_target(path: pathlib.Path) -> str:
    return f"unix:{path.absolute()}"


# gRPC glue.


class _GrpcTransport:
    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    async def recv(self) -> discovery_pb2.DiscoveryRequest | None:
        request = await self._context.read()
        return None if request is grpc.aio.EOF else request

    async def send(self, response: discovery_pb2.DiscoveryResponse) -> None:
        await self._context.write(response)


class _SdsServicer(sds_pb2_grpc.SecretDiscoveryServiceServicer):
    def __init__(self, sds: SdsServer) -> None:
        self._sds = sds

    async def StreamSecrets(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            await self._sds.serve(_GrpcTransport(context), peer=context.peer())
        except InvalidStreamError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except ConnectionRefusedError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    async def FetchSecrets(
        self, request: discovery_pb2.DiscoveryRequest, context: grpc.aio.ServicerContext
    ) -> discovery_pb2.DiscoveryResponse:
        remaining = context.time_remaining()
        timeout = DEFAULT_FETCH_TIMEOUT if remaining is None else min(remaining, 60.0)
        try:
            return await self._sds.fetch(request, timeout)
        except InvalidStreamError as error:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
        except ConnectionRefusedError as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except TimeoutError:
            await context.abort(
                grpc.StatusCode.UNAVAILABLE, "no certificate yet: the CA has not answered"
            )
        raise AssertionError("unreachable: abort raises")

    async def DeltaSecrets(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "delta SDS is not served; use state of the world"
        )
