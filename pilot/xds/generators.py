"""A type-URL -> generator table, callable as the server's `Generate` (filled once by bootstrap).

Each entry generates one xDS type for a proxy: `(proxy, names) -> [(name, message), ...]`.
A type with no entry yields no resources: an empty answer, which Envoy accepts, rather than
no answer at all, which would leave it waiting for `initial_fetch_timeout`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from pilot.xds.proxy import Proxy
from pkg.xds.resources import Resource, Resources

TypeGenerator = Callable[[Proxy, Collection[str]], Sequence[Resource] | Resources]


class Generators:
    def __init__(self, table: Mapping[str, TypeGenerator]) -> None:
        self._table = dict(table)

    def __call__(
        self, proxy: Proxy, type_url: str, names: Collection[str]
    ) -> Sequence[Resource] | Resources:
        generate = self._table.get(type_url)
        if generate is None:
            return []
        return generate(proxy, names)

    def type_urls(self) -> list[str]:
        return sorted(self._table)
