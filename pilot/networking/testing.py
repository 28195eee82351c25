"""Test support: Bookinfo's config as the local platform registers it, and a plain proxy."""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

from pilot.model.index import ServiceIndex
from pilot.model.push_context import MeshOptions, PushContext, build_push_context
from pilot.registry.serviceentry.controller import ServiceEntryRegistry
from pkg.config import loader
from pkg.config.resource import Resource

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BOOKINFO = ROOT / "samples" / "bookinfo"

# pod name -> (address, labels, service account); the addresses `make bookinfo` uses.
PODS = {
    "productpage-v1": (
        "127.0.1.2",
        {"app": "productpage", "version": "v1"},
        "bookinfo-productpage",
    ),
    "details-v1": ("127.0.1.3", {"app": "details", "version": "v1"}, "bookinfo-details"),
    "reviews-v1": ("127.0.1.4", {"app": "reviews", "version": "v1"}, "bookinfo-reviews"),
    "reviews-v2": ("127.0.1.5", {"app": "reviews", "version": "v2"}, "bookinfo-reviews"),
    "reviews-v3": ("127.0.1.6", {"app": "reviews", "version": "v3"}, "bookinfo-reviews"),
    "ratings-v1": ("127.0.1.7", {"app": "ratings", "version": "v1"}, "bookinfo-ratings"),
}


@dataclasses.dataclass(frozen=True)
class FakeProxy:
    type: str
    ip: str
    namespace: str = "default"
    labels: Mapping[str, str] = dataclasses.field(default_factory=dict)
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    domain: str = ""

    def __post_init__(self) -> None:
        if not self.domain:
            object.__setattr__(self, "domain", f"{self.namespace}.svc.cluster.local")


def sidecar(pod: str) -> FakeProxy:
    ip, labels, _ = PODS[pod]
    return FakeProxy("sidecar", ip, "default", labels)


def workload_entries() -> list[Resource]:
    return [
        loader.load_object(
            {
                "apiVersion": "networking.istio.io/v1alpha3",
                "kind": "WorkloadEntry",
                "metadata": {"name": pod, "namespace": "default"},
                "spec": {
                    "address": ip,
                    "labels": {**labels, "security.istio.io/tlsMode": "istio"},
                    "serviceAccount": sa,
                    "ports": {"http": 9080},
                },
            },
            source=pod,
        )
        for pod, (ip, labels, sa) in PODS.items()
    ]


def bookinfo_push(*samples: str, extra: Iterable[Resource] = ()) -> PushContext:
    """Bookinfo's services and pods plus the named networking samples (file stems)."""
    resources = loader.load_file(BOOKINFO / "platform" / "local" / "bookinfo.yaml")
    resources += workload_entries()
    for sample in samples:
        resources += loader.load_file(BOOKINFO / "networking" / f"{sample}.yaml")
    resources += list(extra)
    # Like applying files in order to a store: a later resource of the same name replaces one.
    latest = {(r.schema.kind, r.metadata.namespace, r.metadata.name): r for r in resources}
    configs: dict[str, list[Resource]] = {}
    for (kind, _, _), resource in latest.items():
        configs.setdefault(kind, []).append(resource)
    return push_of(configs)


def push_of(
    configs: Mapping[str, Iterable[Resource]], mesh: MeshOptions | None = None
) -> PushContext:
    """A push context as Pilot builds one: ServiceEntries and WorkloadEntries through the
    ServiceEntry registry, everything else as config."""
    registry = ServiceEntryRegistry()
    registry.sync(configs.get("ServiceEntry", ()), configs.get("WorkloadEntry", ()))
    kinds = {k: list(v) for k, v in configs.items()}
    return build_push_context(kinds, ServiceIndex.read(registry), mesh)
