"""A bucketed rolling window: how much of a rate limit is in use right now.

The window's length is split into `BUCKETS` buckets; a grant is counted in the bucket of
the moment it was made, and a bucket's whole count comes back once the bucket has entirely
left the window (its end is at least a window-length ago). So within ANY interval of one
window length no more than `max_amount` is ever granted, and capacity returns at most one
bucket (a tenth of the window) later than an exact sliding log would return it, with memory
bounded by the bucket count rather than by the request rate.
"""

from __future__ import annotations

import collections

BUCKETS = 10


class RollingWindow:
    def __init__(self, max_amount: int, window: float, *, buckets: int = BUCKETS) -> None:
        if window <= 0:
            raise ValueError("a rolling window needs a positive length")
        self.max_amount = max_amount
        self.window = window
        self.bucket = window / buckets
        # Integer microseconds, so bucket edges do not drift with float rounding.
        self._window_us = _micros(window)
        self._bucket_us = max(self._window_us // buckets, 1)
        self._counts: collections.deque[tuple[int, int]] = collections.deque()  # (bucket, n)
        self._in_use = 0

    def available(self, now: float) -> int:
        self._expire(now)
        return max(self.max_amount - self._in_use, 0)

    def in_use(self, now: float) -> int:
        self._expire(now)
        return self._in_use

    def alloc(self, amount: int, now: float) -> None:
        """Counts `amount` as granted now; the caller has checked `available()`."""
        index = _micros(now) // self._bucket_us
        if self._counts and self._counts[-1][0] == index:
            _, count = self._counts.pop()
            self._counts.append((index, count + amount))
        else:
            self._counts.append((index, amount))
        self._in_use += amount

    def is_idle(self, now: float) -> bool:
        """Nothing granted is still in the window: the window may be forgotten."""
        self._expire(now)
        return not self._counts

    def _expire(self, now: float) -> None:
        # Bucket i spans [i*b, (i+1)*b); it has left the window once (i+1)*b <= now - window.
        horizon = _micros(now) - self._window_us
        while self._counts and (self._counts[0][0] + 1) * self._bucket_us <= horizon:
            _, count = self._counts.popleft()
            self._in_use -= count


def _micros(seconds: float) -> int:
    return round(seconds * 1_000_000)
