"""The versioned snapshot cache, apart from the per-stream protocol (go-control-plane's split).

A `Snapshot` answers "what are the resources of this type, for these names, now?" for one
key (a node, an identity). `SnapshotCache` keeps one snapshot per key and the streams
watching each key; `set_snapshot` checks the snapshot's references, stores it and hands it to
every watching stream, which then sends what changed. The server reaches the cache through
one method, `ConfigWatcher.watch`, so a component can put its own cache behind it (Pilot's
snapshots generate lazily, per type, on first use) and tests can put a fake there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Generic, Protocol, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from pkg.xds import resources as res
from pkg.xds.peer import StreamInfo
from pkg.xds.resources import Resources

log = logging.getLogger(__name__)

Cancel = Callable[[], None]


class Snapshot(Protocol):
    def resources(self, type_url: str, names: frozenset[str] | None) -> Resources | None:
        """The resources of `type_url` among `names` (None: a wildcard subscription), or
        None when there is nothing to answer yet. May raise: the stream logs it, counts a
        generation error and keeps what the client has."""
        ...


S = TypeVar("S", bound=Snapshot)
S_co = TypeVar("S_co", bound=Snapshot, covariant=True)


class ConfigWatcher(Protocol[S_co]):
    """The one method the server uses: follow the snapshots of a stream's key."""

    def watch(self, stream: StreamInfo[object], on_change: Callable[[S_co], None]) -> Cancel:
        """Call `on_change` with the current snapshot, if any, and with each new one until
        the returned function is called. `on_change` must not block."""
        ...


class SnapshotError(ValueError):
    """A snapshot that would send a client a dangling reference; refused."""


class StaticSnapshot:
    """Fixed resources per type (go-control-plane's Snapshot).

    A name in `Resources.pending` is one the snapshot will have but not yet: a subscription
    naming it waits. Names it neither has nor expects are not answered; a subscription
    naming nothing it has gets no answer at all.
    """

    def __init__(self, resources: Mapping[str, Resources]) -> None:
        for type_url, items in resources.items():
            if items.type_url != type_url:
                raise SnapshotError(f"{items.type_url} resources filed under {type_url}")
        self._resources = dict(resources)

    @property
    def type_urls(self) -> list[str]:
        return sorted(self._resources)

    def version(self, type_url: str) -> str | None:
        items = self._resources.get(type_url)
        return items.version if items is not None else None

    def resources(self, type_url: str, names: frozenset[str] | None) -> Resources | None:
        items = self._resources.get(type_url)
        if items is None:
            return Resources(type_url, {})
        if names is None:
            return None if items.pending else items
        if names & items.pending:
            return None
        selected = items.select(names)
        return selected if len(selected) else None

    def check(self) -> None:
        """Every EDS cluster has its endpoints here, every RDS listener its routes."""
        for refer, target, names_of in (
            (res.CLUSTER, res.ENDPOINT, _eds_names),
            (res.LISTENER, res.ROUTE, _rds_names),
        ):
            if refer not in self._resources or target not in self._resources:
                continue
            known = self._resources[target].names | self._resources[target].pending
            for name, message in self._resources[refer]:
                missing = sorted(set(names_of(message)) - known)
                if missing:
                    raise SnapshotError(
                        f"{res.short_name(refer)} {name!r} refers to {res.short_name(target)} "
                        f"{', '.join(missing)}, which the snapshot does not have"
                    )


def _eds_names(cluster: cluster_pb2.Cluster) -> list[str]:
    if cluster.type != cluster_pb2.Cluster.EDS:
        return []
    return [cluster.eds_cluster_config.service_name or cluster.name]


def _rds_names(listener: listener_pb2.Listener) -> list[str]:
    names = []
    for chain in listener.filter_chains:
        for network_filter in chain.filters:
            manager = hcm_pb2.HttpConnectionManager()
            if network_filter.typed_config.Unpack(manager) and manager.HasField("rds"):
                names.append(manager.rds.route_config_name)
    return names


class SnapshotCache(Generic[S]):
    """Snapshots by key, and the streams watching each key.

    `initial` makes the first snapshot of a key a stream watches and no snapshot exists for
    (Pilot: a new proxy); without it such a stream waits for `set_snapshot`. A key's
    snapshot is dropped when its last stream goes, unless `keep`.
    """

    def __init__(
        self,
        *,
        initial: Callable[[StreamInfo[object]], S | None] | None = None,
        keep: bool = False,
    ) -> None:
        self._initial = initial
        self._keep = keep
        self._snapshots: dict[str, S] = {}
        self._watchers: dict[str, list[Callable[[S], None]]] = {}

    def watch(self, stream: StreamInfo[object], on_change: Callable[[S], None]) -> Cancel:
        key = stream.key
        self._watchers.setdefault(key, []).append(on_change)
        snapshot = self._snapshots.get(key)
        if snapshot is None and self._initial is not None:
            snapshot = self._initial(stream)
            if snapshot is not None:
                self._snapshots[key] = snapshot
        if snapshot is not None:
            on_change(snapshot)

        def cancel() -> None:
            watchers = self._watchers.get(key, [])
            if on_change in watchers:
                watchers.remove(on_change)
            if not watchers:
                self._watchers.pop(key, None)
                if not self._keep:
                    self._snapshots.pop(key, None)

        return cancel

    def set_snapshot(self, key: str, snapshot: S) -> None:
        """Check, store and hand `snapshot` to every stream of `key`; a snapshot whose
        references dangle raises SnapshotError and changes nothing."""
        check = getattr(snapshot, "check", None)
        if check is not None:
            check()
        self._snapshots[key] = snapshot
        for on_change in list(self._watchers.get(key, ())):
            on_change(snapshot)

    def snapshot(self, key: str) -> S | None:
        return self._snapshots.get(key)

    def clear_snapshot(self, key: str) -> None:
        self._snapshots.pop(key, None)

    def watched(self) -> Iterator[tuple[str, S]]:
        """(key, snapshot) of every key some stream watches and a snapshot exists for."""
        for key in list(self._watchers):
            snapshot = self._snapshots.get(key)
            if snapshot is not None:
                yield key, snapshot
