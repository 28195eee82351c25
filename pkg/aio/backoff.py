"""Exponential back-off between attempts, bounded, optionally with jitter.

One policy for every retry loop in the mesh (Envoy restarts, CA calls, registry watches,
store writes). Jitter matters wherever many clients retry against one restarted server:
without it they would all arrive in the same instant.
"""

from __future__ import annotations

import dataclasses
import random


@dataclasses.dataclass
class Backoff:
    """Delays `minimum`, doubling up to `maximum`, each shortened by up to `jitter` of itself;
    `reset()` after a success starts over."""

    minimum: float = 0.2
    maximum: float = 30.0
    jitter: float = 0.0
    rng: random.Random = dataclasses.field(default_factory=random.Random)
    _next: float | None = None

    def next_delay(self) -> float:
        delay = self.minimum if self._next is None else self._next
        self._next = min(delay * 2, self.maximum)
        if self.jitter:
            delay *= 1.0 - self.jitter * self.rng.random()
        return delay

    def reset(self) -> None:
        self._next = None
