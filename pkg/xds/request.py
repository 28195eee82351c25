"""Requests as received: the DiscoveryRequest, and a cheap key for its subscription.

Envoy repeats its whole subscription in every request, ACKs included: thousands of EDS
cluster names, each a Python string once protobuf hands them over. `decode` parses the
request and also keeps, as bytes, everything in it but the version, type URL and nonce (the
fields that change from one ACK to the next): two requests with equal keys name the same
resources, so the stream can reuse the names it already has instead of building them again.
"""

from __future__ import annotations

import collections
import dataclasses

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message, message_factory
from google.protobuf.message import Message


class UndecodableRequestError(ValueError):
    """Bytes that are not a DiscoveryRequest (the stream ends INVALID_ARGUMENT)."""


def _header_type() -> type[Message]:
    """DiscoveryRequest's version_info (1), type_url (4) and response_nonce (5) only: the
    rest (node, resource_names, error_detail) stays as unknown bytes."""
    proto = descriptor_pb2.FileDescriptorProto(
        name="pkg_xds_request_header.proto", package="pkgxds"
    )
    message = proto.message_type.add(name="RequestHeader")
    for name, number in (("version_info", 1), ("type_url", 4), ("response_nonce", 5)):
        message.field.add(
            name=name,
            number=number,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
        )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("pkgxds.RequestHeader"))


_Header = _header_type()


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    message: discovery_pb2.DiscoveryRequest
    names_key: bytes  # node, resource names and error detail as sent


def decode(data: bytes) -> Request:
    """The request `data` encodes; raises UndecodableRequestError."""
    try:
        return _decode(data)
    except message.DecodeError as error:
        raise UndecodableRequestError(
            f"cannot parse the request as envoy.service.discovery.v3.DiscoveryRequest "
            f"({len(data)} bytes): {error}"
        ) from None


def _decode(data: bytes) -> Request:
    header = _Header.FromString(data)
    header.ClearField("version_info")
    header.ClearField("type_url")
    header.ClearField("response_nonce")
    return Request(
        discovery_pb2.DiscoveryRequest.FromString(data), _shared(header.SerializeToString())
    )


# Keys of large subscriptions seen recently, one copy each: a stream keeps its last key, and
# two thousand streams naming the same four thousand clusters would keep 250 KB apiece.
_SHARED_MIN = 4096
_SHARED_MAX = 512
_keys: collections.OrderedDict[bytes, bytes] = collections.OrderedDict()


def _shared(key: bytes) -> bytes:
    if len(key) < _SHARED_MIN:
        return key
    found = _keys.get(key)
    if found is not None:
        _keys.move_to_end(key)
        return found
    _keys[key] = key
    if len(_keys) > _SHARED_MAX:
        _keys.popitem(last=False)
    return key
