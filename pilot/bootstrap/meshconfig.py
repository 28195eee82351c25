"""MeshConfig as istiod reads it: the `mesh` key of the ConfigMap `istio` in istiod's
namespace (`istio-system`), from the config store, watched; `--mesh-config` (a file) is the
fallback while there is no such ConfigMap.

A new version is parsed and checked before it is used (pkg/config/mesh: an unknown field,
a wrong type, an address that is not host:port, a Mixer without the filter module); one
that fails is reported with the ConfigMap's name and the reason, and the mesh config in use
stays as it was. Deleting the ConfigMap goes back to the file's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from api.mesh.v1alpha1.config_pb2 import MeshConfig
from pilot.model.push_context import MeshOptions
from pkg.config.mesh import MeshConfigError, parse_mesh_config
from pkg.config.resource import Resource

CONFIGMAP = "istio"
KEY = "mesh"
NAMESPACE = "istio-system"


def mesh_options(domain: str, mesh: MeshConfig, mixer_filter_wasm: str) -> MeshOptions:
    """The mesh-wide settings generators read, from the flags and a MeshConfig."""
    options = MeshOptions(
        domain_suffix=domain, mesh_config=mesh, mixer_filter_wasm=mixer_filter_wasm
    )
    changes: dict[str, Any] = {}
    if mesh.HasField("connect_timeout"):
        changes["connect_timeout"] = mesh.connect_timeout.ToNanoseconds() / 1e9
    if mesh.root_namespace:
        changes["root_namespace"] = mesh.root_namespace
    if mesh.trust_domain:
        changes["trust_domain"] = mesh.trust_domain
    return dataclasses.replace(options, **changes) if changes else options


def check_mixer(mesh: MeshConfig, mixer_filter_wasm: str, source: str) -> None:
    if (mesh.mixer_check_server or mesh.mixer_report_server) and not mixer_filter_wasm:
        raise MeshConfigError(
            f"{source}: names a Mixer, but Pilot has no --mixer-filter-wasm to say where its "
            "filter is"
        )


def from_configmap(configmap: Resource, fallback: MeshOptions) -> MeshOptions:
    """The options of the ConfigMap's `mesh` key, with Pilot's own flags from `fallback`.

    Raises MeshConfigError, naming the ConfigMap, when the key is missing or not a valid
    MeshConfig.
    """
    source = f"ConfigMap {configmap.metadata.namespace}/{configmap.metadata.name}"
    data = (configmap.body or {}).get("data") or {}
    text = data.get(KEY)
    if not isinstance(text, str):
        raise MeshConfigError(f"{source}: has no {KEY!r} key")
    mesh = parse_mesh_config(text, f"{source} key {KEY!r}")
    check_mixer(mesh, fallback.mixer_filter_wasm, source)
    options = mesh_options(fallback.domain_suffix, mesh, fallback.mixer_filter_wasm)
    return dataclasses.replace(options, mixer_check_cache=fallback.mixer_check_cache)


def is_mesh_configmap(resource: Resource, namespace: str = NAMESPACE) -> bool:
    return resource.metadata.name == CONFIGMAP and resource.metadata.namespace == namespace
