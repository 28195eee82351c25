"""`istioctl manifest generate`: every object of the install, from values and the registry.

Values are values.yaml with the user's files (`-f`) and `--set path=value` over it (Istio's
paths: `values.global.hub=...`, `meshConfig.trustDomain=...`). The charts' templates render
with pkg/gotemplate over `.Values` and `.Release`; the CRDs, the mesh ConfigMap and the
injector ConfigMap are built here. Objects come out in the order an install applies them
(namespace and CRDs first, webhooks last), as Helm orders a release.
"""

from __future__ import annotations

import copy
import json
import pathlib
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from manifests import crds
from pkg import gotemplate
from pkg.config import mesh as meshconfig
from pkg.inject import config as injectconfig
from pkg.inject import policy

ROOT = pathlib.Path(__file__).parent
CHARTS = ROOT / "charts"
INJECTION_TEMPLATE = CHARTS / "istio-control/istio-discovery/files/injection-template.yaml"
_ORDER = ["Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding",
          "Role", "RoleBinding", "Secret", "ConfigMap", "Service", "DaemonSet", "Deployment",
          "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]  # fmt: skip


class ManifestError(ValueError):
    """Values that cannot make an install: which one, and why."""


def default_values() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "values.yaml").read_text())


def merge_values(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge_values(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_set(values: dict[str, Any], flag: str) -> dict[str, Any]:
    """One `--set path=value`: `values.` paths address values.yaml, `meshConfig.` the mesh."""
    path, sep, text = flag.partition("=")
    if not sep or not path:
        raise ManifestError(f"--set {flag!r}: want path=value")
    parts = path.split(".")
    if parts[0] == "values":
        parts = parts[1:]
    elif parts[0] != "meshConfig":
        raise ManifestError(f"--set {path}: paths start with values. or meshConfig.")
    if not parts or not all(parts):
        raise ManifestError(f"--set {path}: an empty path element")
    try:
        value = yaml.safe_load(text) if text else ""
    except yaml.YAMLError:
        value = text
    out = copy.deepcopy(values)
    node = out
    for part in parts[:-1]:
        if not isinstance(node.get(part, {}), dict):
            raise ManifestError(f"--set {path}: {part} is not a mapping")
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def values_from(files: Iterable[pathlib.Path] = (), sets: Iterable[str] = ()) -> dict[str, Any]:
    values = default_values()
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ManifestError(f"{path}: {error}") from None
        # An IstioOperator-style file carries values under spec.values (and spec.meshConfig).
        if isinstance(data, dict) and data.get("kind") == "IstioOperator":
            spec = data.get("spec") or {}
            data = {
                **(spec.get("values") or {}),
                **({"meshConfig": spec["meshConfig"]} if "meshConfig" in spec else {}),
            }
        if not isinstance(data, dict):
            raise ManifestError(f"{path}: values must be a mapping")
        values = merge_values(values, data)
    for flag in sets:
        values = apply_set(values, flag)
    return values


def _render(path: pathlib.Path, data: Mapping[str, Any]) -> list[dict[str, Any]]:
    name = str(path.relative_to(CHARTS))
    try:
        text = gotemplate.parse(name, path.read_text()).execute(data)
    except (gotemplate.TemplateSyntaxError, gotemplate.ExecError) as error:
        raise ManifestError(str(error)) from None
    try:
        return [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError as error:
        raise ManifestError(f"{name} rendered YAML that does not parse: {error}") from None


def mesh_configmap(values: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    mesh_yaml = yaml.safe_dump(
        values.get("meshConfig") or {}, default_flow_style=False, sort_keys=True
    )
    try:
        meshconfig.apply_mesh_config(mesh_yaml)  # a field MeshConfig lacks is refused here
    except meshconfig.MeshConfigError as error:
        raise ManifestError(f"meshConfig: {error}") from None
    return _configmap(injectconfig.MESH_CONFIGMAP, namespace, {"mesh": mesh_yaml}, "istiod")


def injector_configmap(values: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    webhook = values.get("sidecarInjectorWebhook") or {}
    templates = {"sidecar": INJECTION_TEMPLATE.read_text(), **(webhook.get("templates") or {})}
    config = {
        "policy": ((values.get("global") or {}).get("proxy") or {}).get("autoInject", "enabled"),
        "defaultTemplates": webhook.get("defaultTemplates") or ["sidecar"],
        "alwaysInjectSelector": webhook.get("alwaysInjectSelector") or [],
        "neverInjectSelector": webhook.get("neverInjectSelector") or [],
        "injectedAnnotations": webhook.get("injectedAnnotations") or {},
        "templates": templates,
    }
    scoped = {k: values[k] for k in ("global", "sidecarInjectorWebhook", "revision") if k in values}
    scoped["pilot"] = {k: v for k, v in (values.get("pilot") or {}).items() if k in ("cni", "env")}
    data = {
        "config": yaml.safe_dump(config, default_flow_style=False, sort_keys=False, width=1 << 20),
        "values": json.dumps(scoped, indent=2, sort_keys=True),
    }
    try:
        injectconfig.parse_config(data["config"], source="the injector ConfigMap")
    except injectconfig.InjectionConfigError as error:
        raise ManifestError(str(error)) from None
    return _configmap(injectconfig.CONFIGMAP, namespace, data, "sidecar-injector")


def _configmap(name: str, namespace: str, data: dict[str, str], app: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app": app, "release": "istio"},
        },
        "data": data,
    }


def generate(values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every object of the install, in apply order."""
    values = dict(values) if values is not None else default_values()
    namespace = (values.get("global") or {}).get("istioNamespace") or "istio-system"
    data = {
        "Values": values,
        "Release": {"Namespace": namespace, "Name": "istio"},
        "IstioGroups": sorted({k.group for k in crds.istio_kinds()}),
        "InjectionSelectors": policy.webhook_selectors(),
    }
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"istio-injection": "disabled"}},
        },
        *crds.all_crds(),
        mesh_configmap(values, namespace),
        injector_configmap(values, namespace),
    ]
    for path in sorted(CHARTS.glob("**/templates/*.yaml")):
        objects.extend(_render(path, data))
    return sorted(objects, key=install_order)


def install_order(obj: Mapping[str, Any]) -> int:
    kind = obj.get("kind")
    return _ORDER.index(kind) if kind in _ORDER else len(_ORDER)


def to_yaml(objects: Iterable[Mapping[str, Any]]) -> str:
    return "".join(
        "---\n" + yaml.safe_dump(dict(o), default_flow_style=False, sort_keys=False, width=1 << 20)
        for o in objects
    )
