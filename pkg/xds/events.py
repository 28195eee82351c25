"""What a stream reports as it serves, for a component's metrics (Pilot's `pilot_xds_*`).

The engine calls these hooks and never reads anything back: a component that wants no
metrics passes none. Hooks run on the stream's writer or reader task and must not block.
"""

from __future__ import annotations

from typing import Protocol

from pkg.xds.cache import Snapshot


class StreamEvents(Protocol):
    def on_sent(self, type_url: str, seconds: float, size: int) -> None:
        """A response of `type_url` was sent: `seconds` from snapshot lookup to sent,
        `size` bytes of resources."""
        ...

    def on_send_error(self, type_url: str) -> None:
        """Writing a response to the stream failed."""
        ...

    def on_nack(self, type_url: str) -> None:
        """The client rejected a response."""
        ...

    def on_generate_error(self, type_url: str) -> None:
        """The snapshot raised while producing `type_url`'s resources."""
        ...

    def on_snapshot_sent(self, snapshot: Snapshot) -> None:
        """Every subscribed type of a new snapshot has been looked at (and sent if changed):
        the client is now up to date with it."""
        ...
