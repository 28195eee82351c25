"""What each connected proxy was sent and acknowledged: the data behind `istioctl proxy-status`.

Built from the engine's streams on demand (per type: `pkg.xds.status.TypeStatus`), with
`to_json()` for the debug endpoints.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from pilot.xds.proxy import Proxy
from pkg.xds import counters
from pkg.xds import resources as res
from pkg.xds.connection import Connection
from pkg.xds.status import SyncState, TypeStatus, iso

__all__ = ["STATUS_TYPES", "ConnectionStatus", "Counters", "SyncState", "TypeStatus"]

# The four types every status lists, present or not (as proxy-status prints them).
STATUS_TYPES = (res.CLUSTER, res.LISTENER, res.ENDPOINT, res.ROUTE)


@dataclasses.dataclass
class Counters(counters.Counters):
    """The engine's totals, and Pilot's pushes."""

    push_requests: int = 0  # push() calls
    pushes: int = 0  # debounced pushes carried out


@dataclasses.dataclass(frozen=True)
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
            "connected_since": iso(self.connected_since),
            "types": {res.short_name(t): s.to_json() for t, s in self.types.items()},
        }


def connection_status(conn: Connection[Proxy]) -> ConnectionStatus:
    watches = conn.state.watches
    type_urls = list(STATUS_TYPES) + sorted(set(watches) - set(STATUS_TYPES))
    proxy = conn.node
    return ConnectionStatus(
        conn_id=conn.conn_id,
        node_id=proxy.node_id,
        pod=proxy.pod,
        namespace=proxy.namespace,
        proxy_type=proxy.type,
        ip=proxy.ip,
        peer=conn.stream.peer.address,
        connected_since=conn.connected_since,
        types={t: TypeStatus.of(t, watches.get(t)) for t in type_urls},
    )
