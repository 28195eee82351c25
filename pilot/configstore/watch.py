"""Watch events: a bounded history to replay from a resourceVersion, and live subscriptions.

Everything here runs on the event loop thread and never awaits while it changes state, so a
subscription made from a list's resourceVersion sees every later event exactly once.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Iterable
from typing import Any

from pilot.configstore.selectors import EVERYTHING, Selector
from pkg.config.kinds import KindSchema

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"


@dataclasses.dataclass(frozen=True)
class Event:
    type: str  # ADDED | MODIFIED | DELETED
    schema: KindSchema
    namespace: str
    resource_version: int
    object: dict[str, Any]  # the object as sent; a DELETED one carries the deletion's version
    previous: dict[str, Any] | None = None  # the state before a MODIFIED or DELETED

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "object": self.object}

    def seen_through(self, selector: Selector) -> Event | None:
        """The event a watcher with `selector` gets, or None.

        An object modified into the selection is ADDED for that watcher, one modified out of
        it is DELETED (its previous state at the event's version), as Kubernetes' watch
        cache reports them.
        """
        if selector.everything:
            return self
        now = self.type != DELETED and selector.matches(self.object)
        before = self.previous is not None and selector.matches(self.previous)
        if self.type == ADDED:
            return self if now else None
        if self.type == DELETED:
            return self if before else None
        if now:
            return self if before else dataclasses.replace(self, type=ADDED)
        if not before:
            return None
        assert self.previous is not None
        meta = {**self.previous["metadata"], "resourceVersion": str(self.resource_version)}
        return dataclasses.replace(self, type=DELETED, object={**self.previous, "metadata": meta})


class Overflowed(Exception):
    """The subscriber fell too far behind; its events were dropped and it must start again."""


class Subscription:
    """One watcher's queue of events of one kind (in one namespace, or all when None)."""

    def __init__(
        self,
        schema: KindSchema,
        namespace: str | None,
        limit: int,
        initial: Iterable[Event] = (),
        selector: Selector = EVERYTHING,
    ) -> None:
        self.schema = schema
        self.namespace = namespace
        self.selector = selector
        self._pending: collections.deque[Event] = collections.deque()
        for event in initial:
            if self.matches(event) and (seen := event.seen_through(selector)) is not None:
                self._pending.append(seen)
        # The replay (or the synthetic ADDED of a fresh watch) may be long; the limit is on
        # live events queued on top of it.
        self._limit = limit + len(self._pending)
        self._wakeup = asyncio.Event()
        self._closed = False
        self._overflowed = False

    def matches(self, event: Event) -> bool:
        return event.schema == self.schema and self.namespace in (None, event.namespace)

    def offer(self, event: Event) -> None:
        if self._closed or self._overflowed:
            return
        seen = event.seen_through(self.selector)
        if seen is None:
            return
        event = seen
        if len(self._pending) >= self._limit:
            # Never let one slow reader grow the server's memory without bound.
            self._overflowed = True
            self._pending.clear()
        else:
            self._pending.append(event)
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    async def next_batch(self) -> list[Event]:
        """The events queued since the last call; [] once closed; raises Overflowed."""
        while not self._pending and not self._closed and not self._overflowed:
            self._wakeup.clear()
            await self._wakeup.wait()
        if self._overflowed:
            raise Overflowed
        if self._closed:
            return []
        batch = list(self._pending)
        self._pending.clear()
        return batch


class EventLog:
    """The last `history` events and the live subscribers.

    `floor` is the oldest resourceVersion a watch may start from: every event after it is still
    kept. A fresh log (after a restart) starts at the store's current version.
    """

    def __init__(self, *, start: int, history: int, queue_limit: int) -> None:
        self.floor = start
        self._history: collections.deque[Event] = collections.deque()
        self._max_history = history
        self._queue_limit = queue_limit
        self._subscribers: set[Subscription] = set()

    def append(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self._max_history:
            self.floor = self._history.popleft().resource_version
        for subscriber in list(self._subscribers):
            if subscriber.matches(event):
                subscriber.offer(event)

    def since(self, version: int) -> list[Event]:
        """Kept events after `version` (the caller checked version >= floor)."""
        return [e for e in self._history if e.resource_version > version]

    def subscribe(
        self,
        schema: KindSchema,
        namespace: str | None,
        initial: Iterable[Event],
        selector: Selector = EVERYTHING,
    ) -> Subscription:
        subscription = Subscription(schema, namespace, self._queue_limit, initial, selector)
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscription.close()
        self._subscribers.discard(subscription)

    def close_all(self) -> None:
        """Ends every watch (server shutdown): each stream finishes cleanly."""
        for subscription in list(self._subscribers):
            self.unsubscribe(subscription)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)
