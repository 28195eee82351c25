"""Generated pieces kept from one push to the next, each under every input it was built from.

A push rebuilds the PushContext, but most of what generators make from it did not change: a
new service leaves the other 999 services' clusters as they were. `GenerationCache.get`
returns the piece built last time when every input is the same object (or equal), and builds
it afresh otherwise, so only what a change affects is rebuilt. Inputs are the objects the
piece is made of (the Service, the DestinationRule resource, the instances tuple, ...):
registries and the config store keep unchanged ones identical, which makes the check cheap.

Generation stays pure: with no cache (PushContext.cache None) the same pieces are built
every time, and `verify` (PILOT_GENERATION_CACHE_CHECK=1) rebuilds each piece on a hit and
fails loudly if the cached one differs, which would mean a key that misses an input.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from pilot.model.push_context import PieceCache

T = TypeVar("T")

# Entries unused for this many pushes are dropped (a removed service's clusters, ...).
_KEEP_PUSHES = 3


class StaleCacheError(AssertionError):
    """verify mode: a cached piece differs from a fresh build of the same inputs."""


class GenerationCache:
    def __init__(self, *, verify: bool | None = None) -> None:
        self.verify = (
            os.environ.get("PILOT_GENERATION_CACHE_CHECK") == "1" if verify is None else verify
        )
        self._entries: dict[Hashable, tuple[tuple[object, ...], Any, int]] = {}
        self._latest: dict[Hashable, Any] = {}
        self._push = 0
        self.hits = 0
        self.misses = 0

    def next_push(self) -> None:
        """Called once per PushContext; forgets what the last pushes did not use."""
        self._push += 1
        if self._push % _KEEP_PUSHES == 0:
            oldest = self._push - _KEEP_PUSHES
            self._entries = {k: e for k, e in self._entries.items() if e[2] >= oldest}

    def get(self, key: Hashable, inputs: tuple[object, ...], build: Callable[[], T]) -> T:
        entry = self._entries.get(key)
        if entry is not None and _same(entry[0], inputs):
            self.hits += 1
            value: T = entry[1]
            if self.verify:
                fresh = build()
                if fresh != value:
                    raise StaleCacheError(f"generation cache: {key!r} is stale for its inputs")
        else:
            self.misses += 1
            value = build()
        self._entries[key] = (inputs, value, self._push)
        return value

    def latest(self, key: Hashable) -> Any:
        """What `keep` last stored under `key` (a whole table the next push derives from)."""
        return self._latest.get(key)

    def keep(self, key: Hashable, value: object) -> None:
        self._latest[key] = value

    def __len__(self) -> int:
        return len(self._entries)


def _same(old: tuple[object, ...], new: tuple[object, ...]) -> bool:
    return len(old) == len(new) and all(a is b or a == b for a, b in zip(old, new, strict=True))


def piece(
    cache: PieceCache | None, key: Hashable, inputs: tuple[object, ...], build: Callable[[], T]
) -> T:
    """`cache.get`, or just `build()` when generating without a cache."""
    if cache is None:
        return build()
    return cache.get(key, inputs, build)
