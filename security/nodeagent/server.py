"""The SDS server: Envoy's SecretDiscoveryService (state of the world) over a Unix socket.

Served by pkg/xds's engine, as Pilot's ADS is. Each stream names its workload in the Envoy
node of its first request; the stream then follows that identity's snapshot in the secret
snapshots (`SecretSnapshots`, a pkg/xds SnapshotCache fed by the secret cache) and gets
`default` and `ROOTCA` (see resources.py) whenever they change: rotation reaches every open
stream of the identity with no Envoy restart. A name the cache will have but has not yet (a
certificate still being issued) is pending: the stream waits for it.

`authorize` decides "may this caller have this identity": it sees the identity the node
claims and the peer (`StreamInfo`), for streams and for FetchSecrets alike. The default,
`require_vouched_identity`, serves only an identity the transport vouches for: the one a
per-workload socket was made for (sockets.py). A claim alone gets nothing.

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
import logging
import os
import pathlib
import secrets
import socket
import stat
from collections.abc import Callable
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from pkg.xds import counters, grpcservice
from pkg.xds.cache import Cancel, SnapshotCache, StaticSnapshot
from pkg.xds.connection import Transport
from pkg.xds.peer import Peer, StreamInfo
from pkg.xds.resources import Resource, Resources
from pkg.xds.response import Response
from pkg.xds.server import Identified, InvalidStreamError, Server, ServerOptions
from security.nodeagent import resources
from security.nodeagent.cache import SecretCache
from security.nodeagent.identity import Identity, InvalidIdentityError, identity_from_node

__all__ = [
    "Authorize",
    "InvalidStreamError",
    "SdsServer",
    "prepare_socket_path",
    "require_vouched_identity",
    "socket_target",
]

log = logging.getLogger("security.nodeagent")

# Linux's sun_path holds 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
DEFAULT_FETCH_TIMEOUT = 15.0

# (the stream: claimed identity, peer) -> why it may not have that identity, or None.
Authorize = Callable[[StreamInfo[Identity]], str | None]


def require_vouched_identity(stream: StreamInfo[Identity]) -> str | None:
    """Refuse an identity the connection does not vouch for: the node's metadata is the
    client's to choose, the socket it came in on is not."""
    claimed = stream.node.spiffe_id
    where = stream.peer.address or "this connection"
    vouched = stream.peer.identities
    if not vouched:
        return (
            f"node {stream.envoy_node.id!r} asked for {claimed} on {where}, "
            "which vouches for no identity"
        )
    if claimed not in vouched:
        return (
            f"node {stream.envoy_node.id!r} asked for {claimed} on {where}, "
            f"which serves only {', '.join(vouched)}"
        )
    return None


@dataclasses.dataclass
class Counters(counters.Counters):
    """The engine's totals under the node agent's names."""

    @property
    def streams_opened(self) -> int:
        return self.connects

    @property
    def streams_closed(self) -> int:
        return self.disconnects

    @property
    def streams_rejected(self) -> int:
        return self.rejected_streams

    @property
    def pushes(self) -> int:
        """Responses sent because content changed, not because a request asked."""
        return self.pushed_responses

    def to_json(self) -> dict[str, int]:
        return {
            "streams_opened": self.connects,
            "streams_closed": self.disconnects,
            "streams_rejected": self.rejected_streams,
            "responses": self.responses,
            "pushes": self.pushed_responses,
            "acks": self.acks,
            "nacks": self.nacks,
        }


def secret_snapshot(cache: SecretCache, identity: Identity) -> StaticSnapshot:
    """What the cache holds for `identity` now; what it will hold but not yet is pending."""
    served: list[Resource] = []
    pending: list[str] = []
    secret = cache.workload_secret(identity)
    if secret is None:
        pending.append(resources.WORKLOAD_SECRET)
    else:
        served.append(
            Resource(
                resources.WORKLOAD_SECRET,
                resources.workload_secret(secret.chain.certificate_chain_pem, secret.key_pem),
            )
        )
    bundle = cache.root_bundle()
    if bundle is None:
        pending.append(resources.ROOT_SECRET)
    else:
        served.append(Resource(resources.ROOT_SECRET, resources.root_secret(bundle)))
    return StaticSnapshot(
        {resources.SECRET_TYPE: Resources.of(resources.SECRET_TYPE, served, pending=pending)}
    )


class SecretSnapshots:
    """The SDS streams' ConfigWatcher: one snapshot per identity, rebuilt on every change
    the secret cache reports for it. Watching an identity is what makes the cache issue
    and rotate its certificate."""

    def __init__(self, cache: SecretCache) -> None:
        self._secrets = cache
        self._snapshots: SnapshotCache[StaticSnapshot] = SnapshotCache()
        self._refresh: dict[str, Callable[[], None]] = {}
        self._streams: dict[str, int] = {}
        self.on_stream_end: Callable[[StreamInfo[Identity]], None] | None = None

    def watch(self, stream: StreamInfo[Any], on_change: Callable[[StaticSnapshot], None]) -> Cancel:
        identity: Identity = stream.node
        key = stream.key
        if key not in self._refresh:

            def refresh() -> None:
                self._snapshots.set_snapshot(key, secret_snapshot(self._secrets, identity))

            self._refresh[key] = refresh
            self._secrets.watch(identity, refresh)
            refresh()
        self._streams[key] = self._streams.get(key, 0) + 1
        stop = self._snapshots.watch(stream, on_change)

        def cancel() -> None:
            stop()
            self._streams[key] -= 1
            if not self._streams[key]:
                del self._streams[key]
                self._secrets.unwatch(identity, self._refresh.pop(key))
            if self.on_stream_end is not None:
                self.on_stream_end(stream)

        return cancel


class SdsServer:
    def __init__(
        self,
        *,
        cache: SecretCache,
        trust_domain: str,
        authorize: Authorize = require_vouched_identity,
    ) -> None:
        self._cache = cache
        self._trust_domain = trust_domain
        self._authorize = authorize
        self._snapshots = SecretSnapshots(cache)
        self._snapshots.on_stream_end = self._forget
        self._unknown_logged: dict[str, set[str]] = {}
        self.counters = Counters()
        self._engine: Server[Identity] = Server(
            self._snapshots,
            ServerOptions(
                identify=self._identify_stream,
                authorize=authorize,
                authorize_request=self._note_request,
                type_urls=frozenset({resources.SECRET_TYPE}),
                label="SDS",
                conn_prefix="sds",
                logger="security.nodeagent",
                refusal="the node agent is shutting down",
            ),
            self.counters,
        )

    def add_to(
        self,
        grpc_server: grpc.aio.Server,
        *,
        peer: Callable[[grpc.aio.ServicerContext], Peer] = grpcservice.peer_of,
    ) -> None:
        """Serve SDS on `grpc_server`; `peer` says what its port vouches for (sockets.py)."""
        grpcservice.add_to(grpc_server, self._engine, grpcservice.SDS, fetch=self._fetch, peer=peer)

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

    def _identify_stream(self, request: discovery_pb2.DiscoveryRequest) -> Identified[Identity]:
        identity = self.identify(request)
        return Identified(key=identity.spiffe_id, node=identity, name=identity.spiffe_id)

    def _note_request(
        self, stream: StreamInfo[Identity], request: discovery_pb2.DiscoveryRequest
    ) -> None:
        """Say once per stream which asked-for secrets are never served here."""
        logged = self._unknown_logged.setdefault(stream.conn_id, set())
        for name in sorted(set(request.resource_names) - resources.KNOWN_SECRETS - logged):
            logged.add(name)
            log.warning(
                "SDS stream %s asks for secret %r; only %s are served",
                stream.conn_id,
                name,
                sorted(resources.KNOWN_SECRETS),
            )
        return None

    def _forget(self, stream: StreamInfo[Identity]) -> None:
        self._unknown_logged.pop(stream.conn_id, None)

    async def serve(self, transport: Transport, peer: Peer | None = None) -> None:
        """Serve one SDS stream until the client closes it or the server stops.

        Raises InvalidStreamError if the first request does not name a workload,
        PermissionError if `authorize` refuses the caller that identity.
        """
        await self._engine.serve(transport, peer)

    async def fetch(
        self,
        request: discovery_pb2.DiscoveryRequest,
        timeout: float = DEFAULT_FETCH_TIMEOUT,
        peer: Peer | None = None,
    ) -> discovery_pb2.DiscoveryResponse:
        """FetchSecrets: one answer, waiting (bounded) for the certificate to be issued."""
        if self._engine.closing:
            raise ConnectionRefusedError("the node agent is shutting down")
        identity = self.identify(request)
        refusal = self._authorize(
            StreamInfo(
                conn_id="fetch",
                key=identity.spiffe_id,
                node=identity,
                envoy_node=request.node,
                peer=peer or Peer(),
                name=identity.spiffe_id,
            )
        )
        if refusal:
            self.counters.rejected_streams += 1
            log.warning("refusing FetchSecrets: %s", refusal)
            raise PermissionError(refusal)
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
                while (
                    found := secret_snapshot(self._cache, identity).resources(
                        resources.SECRET_TYPE, names
                    )
                ) is None:
                    await changed.wait()
                    changed.clear()
        except TimeoutError:
            raise TimeoutError("no certificate yet: the CA has not answered") from None
        finally:
            self._cache.unwatch(identity, changed.set)
        return Response(
            resources.SECRET_TYPE, found.version, secrets.token_hex(4), found
        ).to_proto()

    async def _fetch(
        self, request: discovery_pb2.DiscoveryRequest, peer: Peer, remaining: float | None
    ) -> discovery_pb2.DiscoveryResponse:
        timeout = DEFAULT_FETCH_TIMEOUT if remaining is None else min(remaining, 60.0)
        return await self.fetch(request, timeout, peer)

    async def stop(self, grace: float | None = None) -> None:
        """Refuse new streams and end the open ones, waiting at most `grace` seconds."""
        await self._engine.stop(grace)

    def status(self) -> dict[str, Any]:
        streams = []
        for conn in self._engine.connections():
            watch = conn.state.watches.get(resources.SECRET_TYPE)
            nack = watch.last_nack if watch is not None else None
            streams.append(
                {
                    "id": conn.conn_id,
                    "identity": conn.stream.name,
                    "peer": conn.stream.peer.address,
                    "names": sorted(watch.names) if watch else [],
                    "version_sent": watch.version_sent if watch else None,
                    "version_acked": watch.version_acked if watch else None,
                    "responses": watch.responses if watch else 0,
                    "acks": watch.acks if watch else 0,
                    "nacks": watch.nacks if watch else 0,
                    "last_nack": None
                    if nack is None
                    else {"nonce": nack.nonce, "version": nack.version, "message": nack.message},
                }
            )
        return {"counters": self.counters.to_json(), "streams": streams}


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
