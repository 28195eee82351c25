"""The injector's settings, as the `istio-sidecar-injector` ConfigMap carries them.

`config` is YAML: the policy (enabled/disabled), the default templates, the templates
themselves (Go templates, by name), aliases, the never/always-inject label selectors and
extra annotations. `values` is the JSON (or YAML) of the Helm values the templates read as
`.Values`. With the mesh's MeshConfig (the `istio` ConfigMap) they make `Settings`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import yaml

from api.mesh.v1alpha1 import config_pb2
from pkg import gotemplate
from pkg.config import mesh as meshconfig
from pkg.inject.funcs import INJECTION_FUNCS

CONFIGMAP = "istio-sidecar-injector"
MESH_CONFIGMAP = "istio"
SIDECAR_TEMPLATE = "sidecar"


class InjectionConfigError(ValueError):
    """Settings that cannot be used: which key, and why."""


@dataclasses.dataclass(frozen=True)
class InjectionConfig:
    policy: str = "enabled"
    default_templates: tuple[str, ...] = (SIDECAR_TEMPLATE,)
    raw_templates: Mapping[str, str] = dataclasses.field(default_factory=dict)
    templates: Mapping[str, gotemplate.Template] = dataclasses.field(default_factory=dict)
    aliases: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    never_inject_selector: tuple[Mapping[str, Any], ...] = ()
    always_inject_selector: tuple[Mapping[str, Any], ...] = ()
    injected_annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything injection reads besides the pod."""

    config: InjectionConfig
    values: Mapping[str, Any]
    mesh: config_pb2.MeshConfig
    revision: str = ""
    native_sidecar: bool = False  # istio-proxy as a Kubernetes native sidecar (an init container)


def parse_config(text: str, *, source: str = "config") -> InjectionConfig:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise InjectionConfigError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise InjectionConfigError(f"{source}: must be a mapping")
    raw = data.get("templates") or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise InjectionConfigError(f"{source}: templates must map names to template text")
    templates = {}
    for name, text_ in raw.items():
        try:
            templates[name] = gotemplate.parse("inject", text_, INJECTION_FUNCS)
        except gotemplate.TemplateSyntaxError as error:
            raise InjectionConfigError(f"{source}: template {name!r}: {error}") from None
    policy = data.get("policy", "enabled")
    if policy not in ("enabled", "disabled"):
        raise InjectionConfigError(f"{source}: policy must be enabled or disabled, got {policy!r}")
    aliases = data.get("aliases") or {}
    return InjectionConfig(
        policy=policy,
        default_templates=tuple(data.get("defaultTemplates") or (SIDECAR_TEMPLATE,)),
        raw_templates=dict(raw),
        templates=templates,
        aliases={k: tuple(v) for k, v in aliases.items()},
        never_inject_selector=tuple(data.get("neverInjectSelector") or ()),
        always_inject_selector=tuple(data.get("alwaysInjectSelector") or ()),
        injected_annotations=dict(data.get("injectedAnnotations") or {}),
    )


def parse_values(text: str, *, source: str = "values") -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise InjectionConfigError(f"{source}: neither JSON nor YAML: {error}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InjectionConfigError(f"{source}: must be a mapping")
    return data


def from_configmaps(
    injector: Mapping[str, Any], mesh: Mapping[str, Any] | None = None, **options: Any
) -> Settings:
    """Settings from the two ConfigMaps' objects (their `data`)."""
    data = injector.get("data") or {}
    if "config" not in data:
        raise InjectionConfigError(f"ConfigMap {CONFIGMAP} has no 'config' key")
    mesh_text = ((mesh or {}).get("data") or {}).get("mesh", "")
    return Settings(
        config=parse_config(data["config"], source=f"ConfigMap {CONFIGMAP} key config"),
        values=parse_values(data.get("values", "{}"), source=f"ConfigMap {CONFIGMAP} key values"),
        mesh=meshconfig.apply_mesh_config(mesh_text),
        **options,
    )
