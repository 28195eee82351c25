"""Exponential back-off between CA attempts, bounded, with jitter.

Jitter matters here: after a CA outage every identity on every node retries, and without it
they would all arrive at the restarted CA in the same instant.
"""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass
class Backoff:
    """Delays `minimum`, doubling up to `maximum`, each shortened by up to `jitter` of itself."""

    minimum: float = 0.2
    maximum: float = 30.0
    jitter: float = 0.2
    rng: random.Random = dataclasses.field(default_factory=random.Random)
    _next: float | None = None

    def next_delay(self) -> float:
        delay = self.minimum if self._next is None else self._next
        self._next = min(delay * 2, self.maximum)
        return delay * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self._next = None
