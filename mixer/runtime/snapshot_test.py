"""The compiled snapshot: which rules a request of each kind, in each namespace, goes through."""

import asyncio
import logging

import prometheus_client

from mixer.adapter import api as adapter_api
from mixer.runtime.snapshot import build_snapshot
from mixer.server.server import standard_types
from mixer.server.testing import POLICY, TELEMETRY
from mixer.template.templates import Variety
from pkg.config import loader

SCOPED = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: denyall, namespace: bookinfo}
spec: {compiledAdapter: denier}
---
apiVersion: config.istio.io/v1alpha2
kind: instance
metadata: {name: nothing, namespace: bookinfo}
spec: {compiledTemplate: checknothing}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: denyall, namespace: bookinfo}
spec: {actions: [{handler: denyall, instances: [nothing]}]}
"""


def _snapshot():
    resources = [
        *loader.load_file(TELEMETRY),
        *loader.load_file(POLICY / "mixer-rule-deny-label.yaml"),
        *loader.load_file(POLICY / "mixer-rule-productpage-ratelimit.yaml"),
        *loader.load_text(SCOPED, source="scoped"),
    ]
    configs: dict[str, list] = {}
    for resource in resources:
        configs.setdefault(resource.schema.kind, []).append(resource)
    env = adapter_api.Env(logging.getLogger("test"), prometheus_client.CollectorRegistry())

    async def build():
        snapshot = await build_snapshot(1, configs, base_types=standard_types(), env=env)
        for entry in snapshot.handlers.values():
            await entry.handler.close()
        return snapshot

    return asyncio.run(build())


def test_each_kind_of_request_goes_only_through_rules_that_can_act_on_it():
    snapshot = _snapshot()
    assert snapshot.errors == ()

    def names(namespace, variety):
        return sorted(r.name for r in snapshot.rules_for(namespace, variety))

    assert names("default", Variety.REPORT) == ["promhttp", "promtcp", "stdio", "stdiotcp"]
    assert names("default", Variety.CHECK) == ["denyreviewsv3"]
    assert names("default", Variety.QUOTA) == ["quota"]
    # A rule outside the default config namespace applies only to its own namespace.
    assert names("bookinfo", Variety.CHECK) == ["denyall", "denyreviewsv3"]
    assert names(None, Variety.CHECK) == ["denyreviewsv3"]
    # Built once per snapshot and then shared.
    assert snapshot.rules_for("default", Variety.CHECK) is snapshot.rules_for(
        "default", Variety.CHECK
    )
