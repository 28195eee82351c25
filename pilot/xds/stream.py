"""Per-stream xDS state and request classification (Istio's `ShouldRespond`), with no I/O.

One `StreamState` per ADS stream holds the nonce counter and, per type URL, a `Watch`: the
subscribed names, what was sent (version, nonce, resources), what Envoy acknowledged, and the
names already answered on this stream. `on_request` classifies each request; only a
`Decision` with `respond` set calls for a response, which the caller builds with `record_sent`.

The rules, in order:
- NACK (error_detail set): recorded, not answered, the last good config stays (resending the
  same content would be NACKed again); unless it names resources never answered here.
- First request of a type on this stream, or an empty nonce: answered.
- Nonce other than the last one sent (stale): ignored, EXCEPT when it names resources not yet
  answered on this stream. After a CDS change Envoy asks for the new clusters' endpoints
  with an already-ACKed nonce; ignoring that starves them until `initial_fetch_timeout`.
- ACK of the last nonce with the same names: nothing to send.
- ACK with changed names (RDS/EDS subscriptions moving): answered with the new set.
- Empty names on a non-wildcard type: unsubscribed, nothing sent.
"""

from __future__ import annotations

import datetime
import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from pilot.xds import resources as res
from pilot.xds.resources import Resource


class Action(enum.Enum):
    RESPOND = "respond"
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"
    UNSUBSCRIBE = "unsubscribe"
    INVALID = "invalid"


@dataclass(frozen=True)
class Decision:
    action: Action
    type_url: str
    reason: str
    acked: bool = False  # the request acknowledged the latest response

    @property
    def respond(self) -> bool:
        return self.action is Action.RESPOND


@dataclass(frozen=True)
class Nack:
    nonce: str
    version: str  # the version Envoy still runs (the last it accepted)
    code: int
    message: str
    time: datetime.datetime


@dataclass
class Watch:
    """What one stream subscribed to and was sent for one type URL."""

    type_url: str
    names: frozenset[str] = frozenset()  # {WILDCARD} for a wildcard subscription
    subscribed: bool = True
    answered: set[str] = field(default_factory=set)
    version_sent: str | None = None
    nonce_sent: str | None = None
    sent_at: datetime.datetime | None = None
    resources_sent: tuple[Resource, ...] = ()
    nonce_acked: str | None = None
    version_acked: str | None = None  # version_info of Envoy's latest request: what it runs
    acks: int = 0
    nacks: int = 0
    last_nack: Nack | None = None
    # A response the client asked for but the generator failed to produce: the next push
    # sends one even if the content hash did not change.
    owed: bool = False

    @property
    def wildcard(self) -> bool:
        return res.WILDCARD in self.names

    def request_names(self) -> list[str]:
        """The names to hand a generator: none for a wildcard subscription."""
        return [] if self.wildcard else sorted(self.names)

    def unanswered(self, names: frozenset[str]) -> frozenset[str]:
        return names - self.answered

    def set_names(self, names: frozenset[str]) -> None:
        # Forget answers for names dropped, so a later re-subscription counts as new.
        self.names = names
        self.answered &= names
        self.subscribed = bool(names)

    @property
    def nacked(self) -> bool:
        """Whether Envoy rejected the latest response of this type."""
        return self.last_nack is not None and self.last_nack.nonce == self.nonce_sent


def requested_names(type_url: str, request_names: Sequence[str]) -> frozenset[str]:
    """The subscription a request stands for; a wildcard one is `{WILDCARD}`."""
    names = frozenset(request_names)
    if type_url in res.WILDCARD_TYPES and (not names or res.WILDCARD in names):
        return frozenset({res.WILDCARD})
    return names


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class StreamState:
    """Nonces, subscriptions and versions of one ADS stream."""

    def __init__(self) -> None:
        self.watches: dict[str, Watch] = {}
        self._nonce = 0
        # Nonces need only be unique per stream; the random part also keeps a reconnected
        # Envoy's leftover nonce from matching one this stream sent.
        self._nonce_prefix = secrets.token_hex(4)

    def next_nonce(self) -> str:
        self._nonce += 1
        return f"{self._nonce_prefix}-{self._nonce}"

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> Decision:
        """Update the state for `request` and say whether it calls for a response."""
        type_url = request.type_url
        if not type_url:
            return Decision(Action.INVALID, type_url, "request without a type URL")
        names = requested_names(type_url, request.resource_names)
        watch = self.watches.get(type_url)
        nonce = request.response_nonce

        if request.HasField("error_detail"):
            return self._on_nack(request, watch, names)

        if watch is None:
            watch = self.watches[type_url] = Watch(type_url)
            watch.set_names(names)
            watch.version_acked = request.version_info or None
            if not names:
                return Decision(Action.UNSUBSCRIBE, type_url, "first request names nothing")
            return Decision(Action.RESPOND, type_url, "first request")

        if not nonce:
            watch.set_names(names)
            if not names:
                return Decision(Action.UNSUBSCRIBE, type_url, "unsubscribed")
            return Decision(Action.RESPOND, type_url, "request without nonce")

        if nonce != watch.nonce_sent:
            new = watch.unanswered(names)
            if new:
                watch.set_names(names)
                return Decision(
                    Action.RESPOND, type_url, f"stale nonce, unanswered names {sorted(new)}"
                )
            return Decision(Action.STALE, type_url, f"stale nonce {nonce}")

        # The latest response was accepted.
        watch.nonce_acked = nonce
        watch.version_acked = request.version_info
        watch.acks += 1
        if names == watch.names:
            return Decision(Action.ACK, type_url, "ack", acked=True)
        watch.set_names(names)
        if not names:
            return Decision(Action.UNSUBSCRIBE, type_url, "unsubscribed", acked=True)
        return Decision(Action.RESPOND, type_url, "subscription changed", acked=True)

    def _on_nack(
        self,
        request: discovery_pb2.DiscoveryRequest,
        watch: Watch | None,
        names: frozenset[str],
    ) -> Decision:
        type_url = request.type_url
        if watch is None:
            # A NACK opening a stream rejects what an earlier stream (or Pilot) sent; this
            # stream still owes the client a first answer.
            watch = self.watches[type_url] = Watch(type_url)
            watch.set_names(names)
            first = True
        else:
            first = False
        watch.nacks += 1
        watch.version_acked = request.version_info or None
        watch.last_nack = Nack(
            nonce=request.response_nonce,
            version=request.version_info,
            code=request.error_detail.code,
            message=request.error_detail.message,
            time=_now(),
        )
        if first and names:
            return Decision(Action.RESPOND, type_url, "first request (carrying a NACK)")
        new = watch.unanswered(names)
        if new:
            watch.set_names(names)
            return Decision(Action.RESPOND, type_url, f"nack, unanswered names {sorted(new)}")
        return Decision(Action.NACK, type_url, request.error_detail.message)

    def record_sent(
        self, type_url: str, resources: Sequence[Resource], version: str
    ) -> discovery_pb2.DiscoveryResponse:
        """The response carrying `resources`, recorded as sent with a fresh nonce."""
        watch = self.watches[type_url]
        nonce = self.next_nonce()
        response = discovery_pb2.DiscoveryResponse(
            version_info=version, type_url=type_url, nonce=nonce
        )
        for resource in resources:
            packed = any_pb2.Any()
            packed.Pack(resource.message)
            response.resources.append(packed)
        watch.version_sent = version
        watch.nonce_sent = nonce
        watch.sent_at = _now()
        watch.resources_sent = tuple(resources)
        watch.answered |= watch.names
        watch.owed = False
        return response
