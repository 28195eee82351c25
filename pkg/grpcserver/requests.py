"""Unary services whose undecodable requests are answered INVALID_ARGUMENT, not UNKNOWN.

grpcio parses a request with the handler's `request_deserializer` before the handler runs;
when that raises (random bytes, a truncated message, invalid UTF-8 in a proto3 string)
grpc.aio ends the call UNKNOWN with "Unexpected error" and the servicer never hears of
it. `add_unary_service` registers every method of a proto service as taking the request's
bytes, and parses them itself: a message that does not parse gets INVALID_ARGUMENT naming
the message type and protobuf's reason, and the servicer's method gets the parsed
message as before. It replaces the generated `add_<Service>Servicer_to_server`.

Streaming methods parse each message in the handler that reads it (pkg/xds does), so they
are refused here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message, message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

__all__ = ["add_unary_service", "parse_request"]

Undecodable = Callable[[str], None]  # (the method's name) -> None, for a counter


def parse_request(message_type: type[message.Message], data: bytes) -> message.Message:
    """The message `data` encodes; raises ValueError saying why it does not parse."""
    try:
        return message_type.FromString(data)
    except message.DecodeError as error:
        name = message_type.DESCRIPTOR.full_name
        raise ValueError(
            f"cannot parse the request as {name} ({len(data)} bytes): {error}"
        ) from None


def add_unary_service(
    server: grpc.aio.Server,
    service: ServiceDescriptor,
    servicer: object,
    *,
    on_undecodable: Undecodable | None = None,
) -> None:
    """Serve every method of `service` from `servicer`'s method of the same name."""
    for method in service.methods:
        if method.client_streaming or method.server_streaming:
            raise ValueError(f"{method.full_name} streams: parse its messages where they are read")
    handlers = {
        method.name: _handler(method, getattr(servicer, method.name), on_undecodable)
        for method in service.methods
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )


def _handler(
    method: MethodDescriptor,
    behavior: Callable[[Any, grpc.aio.ServicerContext], Awaitable[message.Message]],
    on_undecodable: Undecodable | None,
) -> grpc.RpcMethodHandler:
    request_type = message_factory.GetMessageClass(method.input_type)

    async def unary(data: bytes, context: grpc.aio.ServicerContext) -> message.Message:
        try:
            request = parse_request(request_type, data)
        except ValueError as error:
            if on_undecodable is not None:
                on_undecodable(method.name)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            raise  # abort raises; this keeps type checkers content
        return await behavior(request, context)

    # No request_deserializer: the handler gets the bytes as they came.
    return grpc.unary_unary_rpc_method_handler(unary, response_serializer=_serialize_response)


def _serialize_response(response: message.Message) -> bytes:
    return response.SerializeToString()
