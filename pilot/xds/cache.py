"""Pilot's snapshot cache: one lazy snapshot per proxy, generated per type on first use.

A proxy's `ProxySnapshot` calls the generator for a type the first time a stream of that
proxy needs it (for the names it subscribes to) and keeps the result: every stream of the
proxy, and every look at an unchanged type, reuses it. A push replaces the snapshots of the
proxies it affects with `renewed` ones that forget only the types the push may change (all
of them on a full push, EDS alone on an endpoint push); the rest carry over untouched, so an
endpoint change never regenerates clusters, listeners or routes.

Generators may return a `Resources` (shared parts already encoded, see pkg/xds) or a plain
list of (name, message); either way each resource is encoded once per snapshot at most.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

from pilot.xds.proxy import Proxy
from pkg.xds.cache import Cancel, SnapshotCache
from pkg.xds.peer import StreamInfo
from pkg.xds.resources import Resource, ResourceError, Resources

# (proxy, type URL, requested names) -> the resources of that type for that proxy. The names
# come as a set (a proxy's EDS subscription is thousands of names; no order is meant).
Generate = Callable[[Proxy, str, Collection[str]], Sequence[Resource] | Resources]


class ProxySnapshot:
    def __init__(
        self,
        proxy: Proxy,
        generate: Generate,
        carried: dict[str, tuple[frozenset[str] | None, Resources]] | None = None,
    ) -> None:
        self.proxy = proxy
        self._generate = generate
        self._memo: dict[str, tuple[frozenset[str] | None, Resources]] = dict(carried or {})

    def resources(self, type_url: str, names: frozenset[str] | None) -> Resources:
        memo = self._memo.get(type_url)
        if memo is not None and (memo[0] is names or memo[0] == names):
            return memo[1]
        requested: Collection[str] = names if names is not None else ()
        generated = self._generate(self.proxy, type_url, requested)
        if isinstance(generated, Resources):
            if generated.type_url != type_url:
                raise ResourceError(f"{generated.type_url} resources for a {type_url} request")
            resources = generated
        else:
            resources = Resources.of(type_url, generated)
        # A non-wildcard response holds only what was asked for.
        resources = resources.select(names)
        self._memo[type_url] = (names, resources)
        return resources

    def renewed(self, type_urls: frozenset[str] | None) -> ProxySnapshot:
        """A snapshot that generates `type_urls` afresh (None: every type)."""
        carried = (
            {} if type_urls is None else {t: m for t, m in self._memo.items() if t not in type_urls}
        )
        return ProxySnapshot(self.proxy, self._generate, carried)


class ProxyCache:
    """The ConfigWatcher of Pilot's ADS streams: snapshots by node id."""

    def __init__(self, generate: Generate) -> None:
        self._generate = generate
        self._cache: SnapshotCache[ProxySnapshot] = SnapshotCache(initial=self._first)

    def _first(self, stream: StreamInfo[object]) -> ProxySnapshot:
        proxy = stream.node
        assert isinstance(proxy, Proxy)
        return ProxySnapshot(proxy, self._generate)

    def watch(
        self, stream: StreamInfo[object], on_change: Callable[[ProxySnapshot], None]
    ) -> Cancel:
        return self._cache.watch(stream, on_change)

    def renew(self, key: str, type_urls: frozenset[str] | None) -> bool:
        """Give the streams of `key` a snapshot renewed for `type_urls`; False if none."""
        snapshot = self._cache.snapshot(key)
        if snapshot is None:
            return False
        self._cache.set_snapshot(key, snapshot.renewed(type_urls))
        return True
