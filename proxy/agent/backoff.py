"""Exponential back-off between attempts (Envoy restarts, store writes)."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Backoff:
    """Delays between attempts: `minimum`, doubling up to `maximum`; `reset()` starts over."""

    minimum: float
    maximum: float
    _next: float | None = None

    def next_delay(self) -> float:
        delay = self.minimum if self._next is None else self._next
        self._next = min(delay * 2, self.maximum)
        return delay

    def reset(self) -> None:
        self._next = None
