"""What each connected proxy was sent and acknowledged: the data behind `istioctl proxy-status`.

Plain dataclasses built from a stream's state on demand, with `to_json()` for the debug
endpoints. Sync states, per type:
- NOT SENT: nothing of this type sent on this stream yet;
- SYNCED: Envoy acknowledged the latest response;
- STALE: the latest response is not acknowledged yet;
- NACKED: Envoy rejected the latest response (it keeps running `version_acked`).
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any

from pilot.xds import resources as res
from pilot.xds.stream import Watch


class SyncState(enum.Enum):
    NOT_SENT = "NOT SENT"
    SYNCED = "SYNCED"
    STALE = "STALE"
    NACKED = "NACKED"


# The four types every status lists, present or not (as proxy-status prints them).
STATUS_TYPES = (res.CLUSTER, res.LISTENER, res.ENDPOINT, res.ROUTE)


def _time(value: datetime.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class TypeStatus:
    type_url: str
    state: SyncState
    subscribed: list[str] = field(default_factory=list)
    version_sent: str | None = None
    nonce_sent: str | None = None
    sent_at: datetime.datetime | None = None
    version_acked: str | None = None
    nonce_acked: str | None = None
    acks: int = 0
    nacks: int = 0
    last_nack_message: str | None = None
    last_nack_time: datetime.datetime | None = None

    @classmethod
    def of(cls, type_url: str, watch: Watch | None) -> TypeStatus:
        if watch is None:
            return cls(type_url, SyncState.NOT_SENT)
        if watch.nonce_sent is None:
            state = SyncState.NOT_SENT
        elif watch.nacked:
            state = SyncState.NACKED
        elif watch.nonce_acked == watch.nonce_sent:
            state = SyncState.SYNCED
        else:
            state = SyncState.STALE
        nack = watch.last_nack
        return cls(
            type_url=type_url,
            state=state,
            subscribed=sorted(watch.names),
            version_sent=watch.version_sent,
            nonce_sent=watch.nonce_sent,
            sent_at=watch.sent_at,
            version_acked=watch.version_acked,
            nonce_acked=watch.nonce_acked,
            acks=watch.acks,
            nacks=watch.nacks,
            last_nack_message=nack.message if nack else None,
            last_nack_time=nack.time if nack else None,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "type_url": self.type_url,
            "state": self.state.value,
            "subscribed": self.subscribed,
            "version_sent": self.version_sent,
            "nonce_sent": self.nonce_sent,
            "sent_at": _time(self.sent_at),
            "version_acked": self.version_acked,
            "nonce_acked": self.nonce_acked,
            "acks": self.acks,
            "nacks": self.nacks,
            "last_nack_message": self.last_nack_message,
            "last_nack_time": _time(self.last_nack_time),
        }


@dataclass(frozen=True)
class ConnectionStatus:
    conn_id: str
    node_id: str
    pod: str
    namespace: str
    proxy_type: str
    ip: str
    peer: str
    connected_since: datetime.datetime
    types: dict[str, TypeStatus]  # by type URL

    def type(self, short_or_url: str) -> TypeStatus:
        """The status of `CDS` (or a full type URL)."""
        return self.types[res.TYPE_URLS.get(short_or_url, short_or_url)]

    def to_json(self) -> dict[str, Any]:
        return {
            "conn_id": self.conn_id,
            "node_id": self.node_id,
            "pod": self.pod,
            "namespace": self.namespace,
            "proxy_type": self.proxy_type,
            "ip": self.ip,
            "peer": self.peer,
            "connected_since": _time(self.connected_since),
            "types": {res.short_name(t): s.to_json() for t, s in self.types.items()},
        }


@dataclass
class Counters:
    """Server-wide totals since start."""

    push_requests: int = 0  # push() calls
    pushes: int = 0  # debounced pushes carried out
    responses: int = 0
    acks: int = 0
    nacks: int = 0
    generate_errors: int = 0
    connects: int = 0
    disconnects: int = 0
    rejected_streams: int = 0

    def to_json(self) -> dict[str, int]:
        return dict(vars(self))
