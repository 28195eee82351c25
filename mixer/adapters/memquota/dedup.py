"""Remembers quota answers by deduplication id, so a retried request is not charged twice.

Mixer clients resend a quota request with the same deduplication id when a call fails;
the answer given the first time is answered again, for at least `min_duration` after it
was given (Istio's `minDeduplicationDuration`).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

R = TypeVar("R")


class DedupCache(Generic[R]):
    def __init__(self, min_duration: float, clock: Callable[[], float]) -> None:
        self._min_duration = min_duration
        self._clock = clock
        # Insertion order is expiry order: every entry lives exactly min_duration.
        self._entries: collections.OrderedDict[Hashable, tuple[float, R]] = (
            collections.OrderedDict()
        )

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> R | None:
        self._reap()
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: Hashable, result: R) -> None:
        self._reap()
        self._entries.pop(key, None)
        self._entries[key] = (self._clock() + self._min_duration, result)

    def _reap(self) -> None:
        now = self._clock()
        while self._entries:
            key, (expires, _) = next(iter(self._entries.items()))
            if expires > now:
                break
            del self._entries[key]
