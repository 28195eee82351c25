"""One SDS stream's protocol state (state of the world, one type URL), with no I/O.

`on_request` classifies each DiscoveryRequest the way an xDS server must (Istio's
`ShouldRespond`); `should_send` says whether content of a given version is owed to the client;
`record_sent` builds the response with a fresh nonce. The rules:

- NACK (error_detail): counted and kept, not answered (the same content would be rejected
  again); answered only if it names secrets this stream never answered.
- First request, or a request without nonce: answered.
- Stale nonce (not the last one sent): ignored unless it names unanswered secrets; Envoy
  re-sends old nonces when its subscriptions change.
- ACK of the last response with the same names: nothing to send.
- ACK with other names: the new set is answered; no names at all: unsubscribed.
- Pushes: content whose version differs from the last sent is sent, whatever was acked.
"""

from __future__ import annotations

import dataclasses
import enum
import secrets as random_tokens
from collections.abc import Sequence

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2

from security.nodeagent.resources import SECRET_TYPE


class Action(enum.Enum):
    RESPOND = "respond"
    ACK = "ack"
    NACK = "nack"
    STALE = "stale"
    UNSUBSCRIBE = "unsubscribe"
    INVALID = "invalid"


@dataclasses.dataclass(frozen=True)
class Decision:
    action: Action
    reason: str

    @property
    def respond(self) -> bool:
        return self.action is Action.RESPOND


@dataclasses.dataclass(frozen=True)
class Nack:
    nonce: str
    version: str  # the version the client still runs
    message: str


class StreamState:
    """Subscribed names, what was sent and what the client accepted, for one SDS stream."""

    def __init__(self) -> None:
        self.names: frozenset[str] = frozenset()
        self.answered: set[str] = set()
        self.started = False
        self.owed = False  # the client asked for an answer it has not had yet
        self.version_sent: str | None = None
        self.nonce_sent: str | None = None
        self.version_acked: str | None = None
        self.responses = 0
        self.acks = 0
        self.nacks = 0
        self.last_nack: Nack | None = None
        self._nonces = 0
        # Unique per stream; the random part keeps a reconnected Envoy's leftover nonce from
        # matching one of this stream's.
        self._nonce_prefix = random_tokens.token_hex(4)

    def _set_names(self, names: frozenset[str]) -> None:
        # Forget answers for dropped names, so that a later re-subscription counts as new.
        self.names = names
        self.answered &= names

    def _respond(self, names: frozenset[str], reason: str) -> Decision:
        self._set_names(names)
        if not names:
            self.owed = False
            return Decision(Action.UNSUBSCRIBE, reason + ", no names: unsubscribed")
        self.owed = True
        return Decision(Action.RESPOND, reason)

    def on_request(self, request: discovery_pb2.DiscoveryRequest) -> Decision:
        if request.type_url != SECRET_TYPE:
            return Decision(Action.INVALID, f"type {request.type_url!r} is not served here")
        names = frozenset(request.resource_names)
        nonce = request.response_nonce

        if request.HasField("error_detail"):
            self.nacks += 1
            self.version_acked = request.version_info or None
            self.last_nack = Nack(nonce, request.version_info, request.error_detail.message)
            first, self.started = not self.started, True
            new = names - self.answered
            if first or new:
                return self._respond(names, f"NACK naming unanswered secrets {sorted(new)}")
            self._set_names(names)
            return Decision(Action.NACK, request.error_detail.message)

        if not self.started:
            self.started = True
            self.version_acked = request.version_info or None
            return self._respond(names, "first request")

        if not nonce:
            return self._respond(names, "request without nonce")

        if nonce != self.nonce_sent:
            new = names - self.answered
            if new:
                return self._respond(names, f"stale nonce, unanswered secrets {sorted(new)}")
            return Decision(Action.STALE, f"stale nonce {nonce}")

        self.acks += 1
        self.version_acked = request.version_info
        if names == self.names:
            return Decision(Action.ACK, "ack")
        return self._respond(names, "subscription changed")

    def should_send(self, version: str) -> bool:
        """Whether content of `version` (for the current names) is due on this stream."""
        if not self.names:
            return False
        return self.owed or version != self.version_sent

    def record_sent(
        self, secrets: Sequence[secret_pb2.Secret], version: str
    ) -> discovery_pb2.DiscoveryResponse:
        """The response carrying `secrets`, recorded as sent with a fresh nonce."""
        self._nonces += 1
        nonce = f"{self._nonce_prefix}-{self._nonces}"
        response = discovery_pb2.DiscoveryResponse(
            version_info=version, type_url=SECRET_TYPE, nonce=nonce
        )
        for secret in secrets:
            packed = any_pb2.Any()
            packed.Pack(secret)
            response.resources.append(packed)
        self.version_sent = version
        self.nonce_sent = nonce
        # Every subscribed name counts as answered, served or not (an unknown one stays
        # unknown), so that stale requests naming it do not make us resend forever.
        self.answered |= self.names
        self.owed = False
        self.responses += 1
        return response
