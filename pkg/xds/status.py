"""What a stream was sent and acknowledged, per type: the data behind `istioctl proxy-status`.

Plain dataclasses built from a stream's state on demand, with `to_json()` for debug pages.
Sync states, per type:
- NOT SENT: nothing of this type sent on this stream yet;
- SYNCED: the client acknowledged the latest response;
- STALE: the latest response is not acknowledged yet;
- NACKED: the client rejected the latest response (it keeps running `version_acked`).
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field
from typing import Any

from pkg.xds.stream import Watch


class SyncState(enum.Enum):
    NOT_SENT = "NOT SENT"
    SYNCED = "SYNCED"
    STALE = "STALE"
    NACKED = "NACKED"


def iso(value: datetime.datetime | None) -> str | None:
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
    responses: int = 0
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
            responses=watch.responses,
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
            "sent_at": iso(self.sent_at),
            "version_acked": self.version_acked,
            "nonce_acked": self.nonce_acked,
            "responses": self.responses,
            "acks": self.acks,
            "nacks": self.nacks,
            "last_nack_message": self.last_nack_message,
            "last_nack_time": iso(self.last_nack_time),
        }
