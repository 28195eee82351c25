"""Per-stream xDS state and request classification (Istio's `ShouldRespond`), with no I/O.

One `StreamState` per stream (ADS: many types; SDS: one) holds the nonce counter and, per type
URL, a `Watch`: the subscribed names, what was sent (version, nonce, resources), what the
client acknowledged, and the names already answered on this stream. `on_request` classifies
each request; a `Decision` with `respond` set leaves the watch `owed` an answer, which the
caller sends with `record_sent`.

The rules, in order:
- A type the server does not serve: invalid, ignored.
- NACK (error_detail set): recorded, not answered, the last good config stays (resending the
  same content would be NACKed again); unless it names resources never answered here, or
  opens the stream.
- First request of a type on this stream, or an empty nonce: answered.
- Nonce other than the last one sent (stale): ignored, EXCEPT when it names resources not yet
  answered on this stream. After a CDS change Envoy asks for the new clusters' endpoints
  with an already-ACKed nonce; ignoring that starves them until `initial_fetch_timeout`.
- ACK of the last nonce with the same names: nothing to send.
- ACK with changed names (RDS/EDS subscriptions moving): answered with the new set.
- Empty names on a non-wildcard type: unsubscribed, nothing sent.
"""

from __future__ import annotations

import collections
import datetime
import enum
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from envoy.service.discovery.v3 import discovery_pb2

from pkg.xds import resources as res
from pkg.xds.resources import Resources
from pkg.xds.response import Response


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
    version: str  # the version the client still runs (the last it accepted)
    code: int
    message: str
    time: datetime.datetime


@dataclass
class Watch:
    """What one stream subscribed to and was sent for one type URL."""

    type_url: str
    names: frozenset[str] = frozenset()  # {WILDCARD} for a wildcard subscription
    subscribed: bool = True
    answered: frozenset[str] = frozenset()  # always within `names`
    version_sent: str | None = None
    nonce_sent: str | None = None
    sent_at: datetime.datetime | None = None
    resources_sent: Resources | None = None  # the whole state sent (partial updates merged)
    nonce_acked: str | None = None
    version_acked: str | None = None  # version_info of the client's latest request: what it runs
    responses: int = 0
    acks: int = 0
    nacks: int = 0
    last_nack: Nack | None = None
    # The client asked for an answer it has not had yet: the next chance sends one even if
    # the content hash did not change (a failed generation, content not available yet).
    owed: bool = False
    # When owed because the subscription grew: the names the answer must carry besides what
    # changed (None: the whole subscription, as for a first request or one without nonce).
    fresh: frozenset[str] | None = None
    names_key: bytes | None = None  # the last request's names as sent (request.py)
    last_requested: frozenset[str] = frozenset()  # ... and as a set

    @property
    def wildcard(self) -> bool:
        return res.WILDCARD in self.names

    def request_names(self) -> list[str]:
        """The names to hand a generator: none for a wildcard subscription."""
        return [] if self.wildcard else sorted(self.names)

    def subscription(self) -> frozenset[str] | None:
        """The names a response is narrowed to; None for a wildcard subscription."""
        return None if self.wildcard else self.names

    def unanswered(self, names: frozenset[str]) -> frozenset[str]:
        if names is self.answered:
            return frozenset()
        return names - self.answered

    def set_names(self, names: frozenset[str]) -> None:
        # Forget answers for names dropped, so a later re-subscription counts as new.
        self.names = names
        if self.answered is not names and not self.answered <= names:
            self.answered = self.answered & names
        self.subscribed = bool(names)

    @property
    def nacked(self) -> bool:
        """Whether the client rejected the latest response of this type."""
        return self.last_nack is not None and self.last_nack.nonce == self.nonce_sent


def requested_names(type_url: str, request_names: Sequence[str]) -> frozenset[str]:
    """The subscription a request stands for; a wildcard one is `{WILDCARD}`."""
    names = frozenset(request_names)
    if res.is_wildcard_type(type_url) and (not names or res.WILDCARD in names):
        return frozenset({res.WILDCARD})
    return shared(names)


# Large subscriptions seen recently, so that streams naming the same resources share one
# set (and its strings): two thousand proxies each subscribed to the same four thousand
# EDS clusters otherwise hold four thousand strings apiece. Bounded: an old set stays with
# the streams that use it, and is just no longer handed to new ones.
_SHARED_MIN = 64
_SHARED_MAX = 512
_shared: collections.OrderedDict[frozenset[str], frozenset[str]] = collections.OrderedDict()


def shared(names: frozenset[str]) -> frozenset[str]:
    if len(names) < _SHARED_MIN:
        return names
    found = _shared.get(names)
    if found is not None:
        _shared.move_to_end(names)
        return found
    _shared[names] = names
    if len(_shared) > _SHARED_MAX:
        _shared.popitem(last=False)
    return names


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class StreamState:
    """Nonces, subscriptions and versions of one stream.

    `type_urls`: the types this server serves (None: any); requests for others are invalid.
    """

    def __init__(self, type_urls: frozenset[str] | None = None) -> None:
        self.type_urls = type_urls
        self.watches: dict[str, Watch] = {}
        self._nonce = 0
        # Nonces need only be unique per stream; the random part also keeps a reconnected
        # client's leftover nonce from matching one this stream sent.
        self._nonce_prefix = secrets.token_hex(4)

    def next_nonce(self) -> str:
        self._nonce += 1
        return f"{self._nonce_prefix}-{self._nonce}"

    def on_request(
        self, request: discovery_pb2.DiscoveryRequest, names_key: bytes | None = None
    ) -> Decision:
        """Update the state for `request` and say whether it calls for a response.

        `names_key` (see request.py), when given, lets a request naming what the last one
        named reuse its names: an ACK of a thousand EDS clusters then costs no name set.
        """
        type_url = request.type_url
        if not type_url:
            return Decision(Action.INVALID, type_url, "request without a type URL")
        if self.type_urls is not None and type_url not in self.type_urls:
            return Decision(Action.INVALID, type_url, f"type {type_url!r} is not served here")
        watch = self.watches.get(type_url)
        if watch is not None and names_key is not None and names_key == watch.names_key:
            names = watch.last_requested
        else:
            names = requested_names(type_url, request.resource_names)
        if watch is not None:
            watch.names_key, watch.last_requested = names_key, names
        nonce = request.response_nonce

        if request.HasField("error_detail"):
            return self._on_nack(request, watch, names)

        if watch is None:
            watch = self.watches[type_url] = Watch(type_url)
            watch.names_key, watch.last_requested = names_key, names
            watch.version_acked = request.version_info or None
            return self._respond(watch, names, "first request")

        if not nonce:
            return self._respond(watch, names, "request without nonce")

        if nonce != watch.nonce_sent:
            new = watch.unanswered(names)
            if new:
                return self._respond(
                    watch, names, f"stale nonce, {len(new)} unanswered names", fresh=new
                )
            return Decision(Action.STALE, type_url, f"stale nonce {nonce}")

        # The latest response was accepted.
        watch.nonce_acked = nonce
        watch.version_acked = request.version_info
        watch.acks += 1
        if names is watch.names or names == watch.names:
            return Decision(Action.ACK, type_url, "ack", acked=True)
        return self._respond(
            watch, names, "subscription changed", acked=True, fresh=watch.unanswered(names)
        )

    @staticmethod
    def _respond(
        watch: Watch,
        names: frozenset[str],
        reason: str,
        *,
        acked: bool = False,
        fresh: frozenset[str] | None = None,
    ) -> Decision:
        """`fresh`: the names new to the stream, when only they (and what changed) need
        answering: the rest of the subscription was answered already."""
        watch.set_names(names)
        if not names:
            watch.owed = False
            watch.fresh = None
            return Decision(Action.UNSUBSCRIBE, watch.type_url, f"{reason}: unsubscribed", acked)
        if watch.owed:  # an earlier request not answered yet: both are owed
            watch.fresh = None if fresh is None or watch.fresh is None else watch.fresh | fresh
        else:
            watch.fresh = fresh
        watch.owed = True
        return Decision(Action.RESPOND, watch.type_url, reason, acked)

    def _on_nack(
        self,
        request: discovery_pb2.DiscoveryRequest,
        watch: Watch | None,
        names: frozenset[str],
    ) -> Decision:
        type_url = request.type_url
        first = watch is None
        if watch is None:
            # A NACK opening a stream rejects what an earlier stream sent; this stream still
            # owes the client a first answer.
            watch = self.watches[type_url] = Watch(type_url)
        watch.nacks += 1
        watch.version_acked = request.version_info or None
        watch.last_nack = Nack(
            nonce=request.response_nonce,
            version=request.version_info,
            code=request.error_detail.code,
            message=request.error_detail.message,
            time=_now(),
        )
        if first:
            watch.names_key, watch.last_requested = None, names
            return self._respond(watch, names, "first request (carrying a NACK)")
        new = watch.unanswered(names)
        if new:
            return self._respond(watch, names, f"nack, {len(new)} unanswered names", fresh=new)
        watch.set_names(names)
        return Decision(Action.NACK, type_url, request.error_detail.message)

    def record_sent(
        self, type_url: str, resources: Resources, *, only: frozenset[str] | None = None
    ) -> Response:
        """The response carrying `resources` (or just the names in `only`), recorded as sent
        with a fresh nonce."""
        watch = self.watches[type_url]
        response = Response(type_url, resources.version, self.next_nonce(), resources, only)
        watch.version_sent = resources.version
        watch.nonce_sent = response.nonce
        watch.sent_at = _now()
        watch.resources_sent = resources
        # Every subscribed name counts as answered, served or not (an unknown one stays
        # unknown), so that stale requests naming it do not make us resend forever.
        watch.answered = watch.names  # `answered` is within `names`: their union is `names`
        watch.owed = False
        watch.fresh = None
        watch.responses += 1
        return response
