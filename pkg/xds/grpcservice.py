"""The engine on gRPC: the ADS and SDS services, with responses sent as encoded bytes.

The services are registered as generic handlers rather than through the generated servicer
classes so that a response is serialized by `Response.encode` (a header joined to resources
encoded once), not by protobuf for every stream. Requests arrive as bytes and are parsed
where they are read, so one that does not parse ends its stream (or its Fetch)
INVALID_ARGUMENT rather than UNKNOWN, which a raising grpcio deserializer would give.
Errors the engine raises become gRPC statuses: InvalidStreamError INVALID_ARGUMENT,
PermissionError PERMISSION_DENIED, ConnectionRefusedError UNAVAILABLE. Delta xDS is
answered UNIMPLEMENTED.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from envoy.service.discovery.v3 import discovery_pb2

from pkg.grpcserver.requests import parse_request
from pkg.xds import request as xds_request
from pkg.xds.peer import Peer
from pkg.xds.request import Request
from pkg.xds.response import Response
from pkg.xds.server import InvalidStreamError, Server

# (request, the peer, seconds left) -> the response; the unary Fetch of SDS.
Fetch = Callable[
    [discovery_pb2.DiscoveryRequest, Peer, float | None],
    Awaitable[Response | discovery_pb2.DiscoveryResponse],
]


@dataclasses.dataclass(frozen=True)
class Service:
    name: str
    stream: str
    delta: str
    fetch: str | None = None


ADS = Service(
    "envoy.service.discovery.v3.AggregatedDiscoveryService",
    stream="StreamAggregatedResources",
    delta="DeltaAggregatedResources",
)
SDS = Service(
    "envoy.service.secret.v3.SecretDiscoveryService",
    stream="StreamSecrets",
    delta="DeltaSecrets",
    fetch="FetchSecrets",
)


def encode_response(response: Response | discovery_pb2.DiscoveryResponse) -> bytes:
    if isinstance(response, Response):
        return response.encode()
    return response.SerializeToString()


def peer_of(context: grpc.aio.ServicerContext) -> Peer:
    """The client as gRPC saw it; its certificate's SPIFFE URIs on a mutual-TLS port."""
    auth = context.auth_context()
    identities: tuple[str, ...] | None = None
    if auth.get("transport_security_type") == [b"ssl"]:
        sans = auth.get("x509_subject_alternative_name", [])
        identities = tuple(san.decode() for san in sans if san.startswith(b"spiffe://"))
    return Peer(address=context.peer(), identities=identities, auth_context=auth, context=context)


class GrpcTransport:
    def __init__(self, context: grpc.aio.ServicerContext) -> None:
        self._context = context

    async def recv(self) -> Request | None:
        """The next request, or None at the end; raises UndecodableRequestError."""
        data = await self._context.read()
        return None if data is grpc.aio.EOF else xds_request.decode(data)

    async def send(self, response: Response) -> None:
        await self._context.write(response)


async def _abort_for(error: Exception, context: grpc.aio.ServicerContext) -> None:
    if isinstance(error, InvalidStreamError):
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
    elif isinstance(error, PermissionError):
        await context.abort(grpc.StatusCode.PERMISSION_DENIED, str(error))
    elif isinstance(error, ConnectionRefusedError):
        await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
    raise error


def add_to(
    grpc_server: grpc.aio.Server,
    server: Server[Any],
    service: Service,
    *,
    fetch: Fetch | None = None,
    peer: Callable[[grpc.aio.ServicerContext], Peer] = peer_of,
) -> None:
    """Serve `service` on `grpc_server` (before it starts) from the engine `server`.

    `peer` says who the client is; a server whose port itself vouches for its clients (a
    per-workload Unix socket) passes its own."""

    async def stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            await server.serve(GrpcTransport(context), peer(context))
        except (InvalidStreamError, PermissionError, ConnectionRefusedError) as error:
            await _abort_for(error, context)

    async def delta(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(
            grpc.StatusCode.UNIMPLEMENTED, "delta xDS is not served; use state of the world"
        )

    handlers = {
        service.stream: grpc.stream_stream_rpc_method_handler(
            stream, response_serializer=encode_response
        ),
        service.delta: grpc.stream_stream_rpc_method_handler(
            delta,
            request_deserializer=discovery_pb2.DeltaDiscoveryRequest.FromString,
            response_serializer=discovery_pb2.DeltaDiscoveryResponse.SerializeToString,
        ),
    }
    if service.fetch is not None and fetch is not None:

        async def unary(
            data: bytes, context: grpc.aio.ServicerContext
        ) -> Response | discovery_pb2.DiscoveryResponse:
            try:
                request = parse_request(discovery_pb2.DiscoveryRequest, data)
            except ValueError as error:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
                raise  # abort raises; this keeps type checkers content
            try:
                return await fetch(request, peer(context), context.time_remaining())
            except (InvalidStreamError, PermissionError, ConnectionRefusedError) as error:
                await _abort_for(error, context)
            except TimeoutError as error:
                await context.abort(grpc.StatusCode.UNAVAILABLE, str(error) or "timed out")
            raise AssertionError("unreachable: abort raises")

        handlers[service.fetch] = grpc.unary_unary_rpc_method_handler(
            unary, response_serializer=encode_response
        )
    grpc_server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.name, handlers),)
    )
