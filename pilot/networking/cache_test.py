"""Generation across pushes with the cache: the same config as a fresh build, every time,
while only the pieces a change touches are rebuilt."""

from __future__ import annotations

import dataclasses

import pytest

from pilot.model.index import ServiceIndex
from pilot.model.push_context import PushContext, build_push_context
from pilot.networking import generator
from pilot.networking.cache import GenerationCache, StaleCacheError
from pilot.networking.testing import (
    FakeProxy,
    bookinfo_configs,
    generate_all,
    push_of,
    sidecar,
)
from pilot.registry.serviceentry.controller import ServiceEntryRegistry
from pkg.config import loader
from pkg.config.resource import Resource

GATEWAY = FakeProxy("router", "127.0.1.1", "istio-system", {"istio": "ingressgateway"})
PROXIES = {
    "productpage": sidecar("productpage-v1"),
    "reviews-v2": sidecar("reviews-v2"),
    "gateway": GATEWAY,
}
SAMPLES = ("destination-rule-all", "bookinfo-gateway", "virtual-service-reviews-80-20")


class Pilot:
    """Pushes as pilot-discovery makes them: one registry, one cache, index refreshed."""

    def __init__(self, configs: dict[str, list[Resource]]) -> None:
        self.cache = GenerationCache(verify=True)
        self.registry = ServiceEntryRegistry()
        self.configs = configs
        self.registry.sync(configs.get("ServiceEntry", ()), configs.get("WorkloadEntry", ()))
        self.index = ServiceIndex.read(self.registry)
        self.config_id = 0  # changes whenever Istio config (not a registry) changes

    def push(self) -> PushContext:
        changed = self.registry.sync(
            self.configs.get("ServiceEntry", ()), self.configs.get("WorkloadEntry", ())
        )
        self.index = self.index.refresh(self.registry, changed)
        self.cache.next_push()
        return build_push_context(
            self.configs, self.index, cache=self.cache, config_id=self.config_id
        )

    def apply(self, *resources: Resource) -> None:
        for resource in resources:
            kind = resource.schema.kind
            if kind not in ("ServiceEntry", "WorkloadEntry"):
                self.config_id += 1
            items = [
                r
                for r in self.configs.get(kind, [])
                if (r.metadata.namespace, r.metadata.name)
                != (resource.metadata.namespace, resource.metadata.name)
            ]
            self.configs[kind] = [*items, resource]


def fresh(configs: dict[str, list[Resource]]) -> dict[str, object]:
    push = push_of(configs)
    return {name: generate_all(p, push) for name, p in PROXIES.items()}


def with_cache(push: PushContext) -> dict[str, object]:
    return {name: generate_all(p, push) for name, p in PROXIES.items()}


CHANGES = """
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets: [{name: v1, labels: {version: v1}}, {name: v3, labels: {version: v3}}]
---
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http: [{route: [{destination: {host: reviews, subset: v3}}]}]
---
apiVersion: networking.istio.io/v1alpha3
kind: WorkloadEntry
metadata: {name: reviews-v3}
spec:
  address: 127.0.1.16
  labels: {app: reviews, version: v3, security.istio.io/tlsMode: istio}
  serviceAccount: bookinfo-reviews
  ports: {http: 9080}
---
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: extra}
spec:
  hosts: [extra.default.svc.cluster.local]
  resolution: STATIC
  ports: [{number: 9080, name: http, protocol: HTTP}]
  endpoints: [{address: 127.0.1.30}]
---
# A consistent hash changes the routes too (their hash_policy), not only the clusters.
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata: {name: ratings}
spec:
  host: ratings
  trafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x-user}}}
"""


def test_every_push_generates_what_a_fresh_build_would():
    pilot = Pilot(bookinfo_configs(*SAMPLES))
    assert with_cache(pilot.push()) == fresh(pilot.configs)
    built = pilot.cache.misses
    # Nothing changed: every piece comes from the cache.
    assert with_cache(pilot.push()) == fresh(pilot.configs)
    assert pilot.cache.misses == built
    for change in loader.load_text(CHANGES, source="test"):
        pilot.apply(change)
        misses = pilot.cache.misses
        assert with_cache(pilot.push()) == fresh(pilot.configs), change.metadata.name
        assert pilot.cache.misses > misses  # something was rebuilt...
        assert pilot.cache.misses - misses < built / 2  # ...but not everything


def test_an_endpoint_change_leaves_a_table_that_knows_what_changed():
    pilot = Pilot(bookinfo_configs(*SAMPLES))
    names = ["outbound|9080|v3|reviews.default.svc.cluster.local"]
    first = generator.build_endpoints(PROXIES["productpage"], pilot.push(), [])
    before = pilot.cache.latest("eds-table")[0]
    pilot.apply(loader.load_text(CHANGES, source="test")[2])  # reviews-v3 moved
    generator.build_endpoints(PROXIES["productpage"], pilot.push(), names)
    after = pilot.cache.latest("eds-table")[0]
    assert after.changed_since(before) == {
        "outbound|9080||reviews.default.svc.cluster.local",
        "outbound|9080|v3|reviews.default.svc.cluster.local",
    }
    assert after.get("outbound|9080||ratings.default.svc.cluster.local") is before.get(
        "outbound|9080||ratings.default.svc.cluster.local"
    )
    assert len(first) == 0  # nothing asked for, nothing returned


def test_verify_mode_catches_a_key_that_misses_an_input():
    cache = GenerationCache(verify=True)
    cache.get("k", (1,), lambda: "built from 1")
    with pytest.raises(StaleCacheError, match="'k' is stale"):
        cache.get("k", (1,), lambda: "built from something the key does not hold")


def test_a_push_with_a_refreshed_index_only_reuses_config_but_not_the_memo():
    pilot = Pilot(bookinfo_configs(*SAMPLES))
    push = pilot.push()
    generate_all(PROXIES["productpage"], push)
    refreshed = dataclasses.replace(push, memo={})
    assert refreshed.memo == {}
    assert refreshed.cache is pilot.cache
