"""A DiscoveryResponse as sent: a small header in front of resources encoded once.

gRPC is handed `Response.encode()` (see `grpcservice.py`): the header's three strings, then
the shared bytes of the resources. Protobuf allows a message's fields in any order and a
repeated field in pieces, so this is an ordinary DiscoveryResponse to every reader; building
it costs a join, not a serialization of every resource for every stream.
"""

from __future__ import annotations

import dataclasses

from envoy.service.discovery.v3 import discovery_pb2

from pkg.xds.resources import Encoded, Resources, field_bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Response:
    type_url: str
    version: str
    nonce: str
    resources: Resources  # the whole state the client has once it accepts this
    only: frozenset[str] | None = None  # a partial update (EDS, RDS): just these names

    def encode(self) -> bytes:
        header = (
            field_bytes(0x0A, self.version.encode())  # version_info = 1
            + field_bytes(0x22, self.type_url.encode())  # type_url = 4
            + field_bytes(0x2A, self.nonce.encode())  # nonce = 5
        )
        if self.only is None:
            return b"".join([header, *self.resources.wire_parts()])
        return header + self.resources.wire_of(self.only)

    def to_proto(self) -> discovery_pb2.DiscoveryResponse:
        return discovery_pb2.DiscoveryResponse.FromString(self.encode())

    def sent(self) -> list[Encoded]:
        """The resources this response carries, by name."""
        if self.only is None:
            return self.resources.encoded()
        return [e for e in self.resources.encoded() if e.name in self.only]
