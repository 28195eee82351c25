"""Push debouncing as plain state over explicit times (tested on fake time, driven by a loop).

Changes arrive in bursts (a registry resync, a `kubectl apply -f` of ten files). Pushing each
one would regenerate every proxy's config ten times. Like Istio's PILOT_DEBOUNCE_AFTER /
PILOT_DEBOUNCE_MAX, a push fires once the changes have been quiet for `after` seconds, or
`max_delay` seconds after the first queued change, whichever comes first; everything queued
meanwhile merges into one push.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pilot.xds.proxy import Proxy

Affects = Callable[[Proxy], bool]
_ENDPOINT_ONLY = frozenset({"type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"})


@dataclass
class PushRequest:
    """Several push() calls merged: reasons kept, `affects` OR-ed (None = every proxy),
    endpoint cluster names united (None = every cluster)."""

    reasons: list[str] = field(default_factory=list)
    affects: list[Affects] | None = field(default_factory=list)
    full: bool = False
    endpoints: frozenset[str] | None = frozenset()
    types: frozenset[str] | None = frozenset()  # what a full push regenerates (None: all)

    def merge(
        self,
        reason: str,
        affects: Affects | None,
        full: bool,
        endpoints: frozenset[str] | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        self.reasons.append(reason)
        if affects is None:
            self.affects = None
        elif self.affects is not None:
            self.affects.append(affects)
        self.full = self.full or full
        if endpoints is None or self.endpoints is None:
            self.endpoints = None
        else:
            self.endpoints = self.endpoints | endpoints
        # What this push regenerates: the types asked for (None: all), or endpoints alone.
        wanted = types if full else _ENDPOINT_ONLY
        if wanted is None or self.types is None:
            self.types = None
        else:
            self.types = self.types | wanted

    def applies_to(self, proxy: Proxy) -> bool:
        if self.affects is None:
            return True
        return any(predicate(proxy) for predicate in self.affects)


class Debouncer:
    def __init__(self, after: float, max_delay: float) -> None:
        if after < 0 or max_delay < 0:
            raise ValueError("debounce delays must not be negative")
        self.after = after
        self.max_delay = max_delay
        self._pending: PushRequest | None = None
        self._first = 0.0
        self._last = 0.0

    def add(
        self,
        now: float,
        reason: str,
        affects: Affects | None,
        full: bool,
        endpoints: frozenset[str] | None = None,
        types: frozenset[str] | None = None,
    ) -> None:
        if self._pending is None:
            self._pending = PushRequest()
            self._first = now
        self._last = now
        self._pending.merge(reason, affects, full, endpoints, types)

    def deadline(self) -> float | None:
        """When the pending push is due if nothing else arrives; None when nothing is pending."""
        if self._pending is None:
            return None
        return min(self._last + self.after, self._first + self.max_delay)

    def take(self, now: float) -> PushRequest | None:
        """The merged push if it is due at `now` (and forget it), else None."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        pending, self._pending = self._pending, None
        return pending
