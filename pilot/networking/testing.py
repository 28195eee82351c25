"""Test support: Bookinfo's config as the local platform registers it, and a plain proxy."""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import json_format

from pilot.model.index import ServiceIndex
from pilot.model.push_context import MeshOptions, PieceCache, PushContext, build_push_context
from pilot.networking import generator
from pilot.networking.proxyview import ProxyView
from pilot.registry.serviceentry.controller import ServiceEntryRegistry
from pkg.config import loader
from pkg.config.resource import Resource

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
BOOKINFO = ROOT / "samples" / "bookinfo"
TESTDATA = pathlib.Path(__file__).resolve().parent / "testdata"

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
    locality: str = ""

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


def bookinfo_configs(*samples: str, extra: Iterable[Resource] = ()) -> dict[str, list[Resource]]:
    """Bookinfo's config by kind, later resources of one name replacing earlier ones."""
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
    return configs


def bookinfo_push(*samples: str, extra: Iterable[Resource] = ()) -> PushContext:
    """Bookinfo's services and pods plus the named networking samples (file stems)."""
    return push_of(bookinfo_configs(*samples, extra=extra))


def push_of(
    configs: Mapping[str, Iterable[Resource]],
    mesh: MeshOptions | None = None,
    *,
    cache: PieceCache | None = None,
) -> PushContext:
    """A push context as Pilot builds one: ServiceEntries and WorkloadEntries through the
    ServiceEntry registry, everything else as config."""
    registry = ServiceEntryRegistry()
    registry.sync(configs.get("ServiceEntry", ()), configs.get("WorkloadEntry", ()))
    kinds = {k: list(v) for k, v in configs.items()}
    return build_push_context(kinds, ServiceIndex.read(registry), mesh, cache=cache)


# Golden files.


def generate_all(proxy: ProxyView, push: PushContext) -> dict[str, list[dict[str, Any]]]:
    """Every type for `proxy`, as Envoy would fetch them: CDS, then EDS for its EDS
    clusters, LDS, then RDS for the route names its listeners ask for; Envoy's JSON."""
    clusters = list(generator.generate(proxy, generator.CLUSTER, [], push))
    eds = sorted(
        m.eds_cluster_config.service_name or m.name
        for _, m in clusters
        if isinstance(m, cluster_pb2.Cluster) and m.type == cluster_pb2.Cluster.EDS
    )
    listeners = list(generator.generate(proxy, generator.LISTENER, [], push))
    rds = sorted(_route_names(m for _, m in listeners))
    out = {}
    for short, resources in (
        ("CDS", clusters),
        ("EDS", generator.generate(proxy, generator.ENDPOINT, eds, push)),
        ("LDS", listeners),
        ("RDS", generator.generate(proxy, generator.ROUTE, rds, push)),
    ):
        out[short] = [
            {"name": name, **json_format.MessageToDict(message, preserving_proto_field_name=True)}
            for name, message in sorted(resources, key=lambda r: r[0])
        ]
    return out


def _route_names(listeners: Iterable[Any]) -> list[str]:
    names = []
    for listener in listeners:
        assert isinstance(listener, listener_pb2.Listener)
        for chain in listener.filter_chains:
            for network_filter in chain.filters:
                manager = hcm_pb2.HttpConnectionManager()
                if network_filter.typed_config.Unpack(manager) and manager.HasField("rds"):
                    names.append(manager.rds.route_config_name)
    return names


def assert_golden(name: str, data: Any) -> None:
    """`data` equals testdata/<name>.json; with REFRESH_GOLDEN=1, (re)write the file instead."""
    path = TESTDATA / f"{name}.json"
    text = json.dumps(data, indent=1, sort_keys=True) + "\n"
    if os.environ.get("REFRESH_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return
    if not path.exists():
        raise AssertionError(f"no golden file {path}; write it with REFRESH_GOLDEN=1")
    expected = json.loads(path.read_text())
    if expected != json.loads(text):
        raise AssertionError(
            f"generated config differs from {path}; if that is meant, refresh it with "
            "REFRESH_GOLDEN=1 and read the diff"
        )
