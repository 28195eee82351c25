"""What the engine knows of a stream before serving it: who is at the other end."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from envoy.config.core.v3 import base_pb2

NodeT = TypeVar("NodeT")
NodeT_co = TypeVar("NodeT_co", covariant=True)  # a frozen StreamInfo only gives its node out


@dataclasses.dataclass(frozen=True)
class Peer:
    """The transport's view of the client, as gRPC reports it."""

    address: str = ""  # `ipv4:127.0.0.1:53210`, `unix:...`
    # The identities the transport vouches for: a verified client certificate's URI SANs, or
    # the one a per-workload socket was made for; None when it vouches for none (plaintext).
    identities: tuple[str, ...] | None = None
    auth_context: Mapping[str, Sequence[bytes]] = dataclasses.field(default_factory=dict)
    context: Any = None  # the grpc.aio.ServicerContext, for checks that need more of it


@dataclasses.dataclass(frozen=True)
class StreamInfo(Generic[NodeT_co]):
    """One stream as the server identified it from its first request."""

    conn_id: str
    key: str  # the cache key: streams with one key are served one snapshot
    node: NodeT_co  # what the component made of the Envoy node (a Proxy, an Identity, ...)
    envoy_node: base_pb2.Node
    peer: Peer
    name: str  # how logs name the client (a node id, a SPIFFE identity)
