"""Sidecar injection: a pod in, the pod with Istio's sidecar out (Istio's injectPod).

The chosen templates (the `sidecar` one unless `inject.istio.io/templates` names others)
are rendered over the pod (SidecarTemplateData, godata.py) and strategically merged onto
it; then what a template cannot do: containers the user customised (a container of the
template's name in the pod) are re-applied over the template's, the app's probes are
rewritten through the agent, Prometheus' annotations point at the agent's merged metrics,
`sidecar.istio.io/status` records what was added, and the proxy goes last among the
containers (first with holdApplicationUntilProxyStarts; first among init containers as a
native sidecar). A pod injected before is stripped of what its status annotation lists
first, so injecting twice gives the same pod.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from api.mesh.v1alpha1 import config_pb2
from pkg import gotemplate
from pkg.config import mesh as meshconfig
from pkg.gotemplate.values import to_string
from pkg.inject import annotations as annotation_checks
from pkg.inject import probes
from pkg.inject.config import Settings
from pkg.inject.godata import Kube, Names, Proto, TemplateData
from pkg.inject.strategicmerge import PatchError, clone, drop_nulls, merge_pod

PROXY = "istio-proxy"
INIT = "istio-init"
VALIDATION = "istio-validation"
CORE_DUMP = "enable-core-dump"
STATUS_ANNOTATION = "sidecar.istio.io/status"
OVERRIDES_ANNOTATION = "proxy.istio.io/overrides"
PROMETHEUS_ENV = "ISTIO_PROMETHEUS_ANNOTATIONS"
PROXY_CONFIG_ANNOTATION = "proxy.istio.io/config"
TEMPLATES_ANNOTATION = "inject.istio.io/templates"
NATIVE_ANNOTATION = "sidecar.istio.io/nativeSidecar"
NETWORK_LABEL = "topology.istio.io/network"
AUTO_IMAGE = "auto"
_PROMETHEUS = (
    "prometheus_io_scrape",
    "prometheus_io_port",
    "prometheus_io_path",
    "prometheus_istio_io_scrape_targets",
)


# libyaml's parser when PyYAML has it: the rendered template is parsed for every pod, and
# the pure-Python parser takes most of an injection's time.
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class InjectionError(ValueError):
    """The pod cannot be injected: the message says why (an annotation, a template)."""


@dataclasses.dataclass(frozen=True)
class Workload:
    """What owns the pod, as the template's DeploymentMeta and TypeMeta show it."""

    name: str
    namespace: str
    api_version: str = "v1"
    kind: str = "Pod"


# What post-processing appends to the proxy's env after the cluster variables.
_APPENDED_ENV = frozenset({probes.KUBE_APP_PROBERS, PROMETHEUS_ENV})
_CRONJOB_NAME = re.compile(r"(.+)-\d{8,11}$")


def workload_of(pod: Mapping[str, Any]) -> Workload:
    """Istio's GetDeployMetaFromPod: the Deployment (or CronJob) a generated pod comes from."""
    metadata = pod.get("metadata") or {}
    workload = Workload(metadata.get("name", ""), metadata.get("namespace", ""))
    if metadata.get("generateName"):
        owner = next(
            (r for r in metadata.get("ownerReferences") or [] if r.get("controller")), None
        )
        if owner is not None:
            name, kind, api = (
                owner.get("name", ""),
                owner.get("kind", ""),
                owner.get("apiVersion", ""),
            )
            template_hash = (metadata.get("labels") or {}).get("pod-template-hash", "")
            if kind == "ReplicaSet" and template_hash and name.endswith(template_hash):
                name, kind = name.removesuffix("-" + template_hash), "Deployment"
            elif kind == "Job" and (match := _CRONJOB_NAME.match(name)):
                name, kind, api = match.group(1), "CronJob", "batch/v1"
            workload = Workload(name, workload.namespace, api, kind)
    if not workload.name:
        workload = dataclasses.replace(workload, name=metadata.get("name", ""))
    return workload


def _containers(pod: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    return list((pod.get("spec") or {}).get(field) or [])


def find(containers: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((c for c in containers if c.get("name") == name), None)


def find_sidecar(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    return find(_containers(pod, "containers"), PROXY) or find(
        _containers(pod, "initContainers"), PROXY
    )


def image_url(
    values: Mapping[str, Any], image: str, annotations: Mapping[str, str], image_type: str = ""
) -> str:
    glob = values.get("global") or {}
    tag = glob.get("tag")
    tag_text = "" if tag is None else gotemplate_str(tag)
    kind = image_type or glob.get("variant") or ""
    kind = annotations.get("sidecar.istio.io/proxyImageType", kind)
    if kind:
        for known in ("distroless", "debug"):
            if tag_text.endswith("-" + known):
                tag_text = tag_text[: -len(known) - 1]
                break
        if kind != "default":
            tag_text = f"{tag_text}-{kind}"
    return f"{glob.get('hub', '')}/{image}:{tag_text}"


def gotemplate_str(value: Any) -> str:
    return to_string(value)


def _status(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(STATUS_ANNOTATION)
    if text is None:
        return None
    try:
        status = json.loads(text)
    except ValueError:
        return None
    return status if isinstance(status, dict) else None


def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _strip(pod: dict[str, Any], status_port: int) -> dict[str, Any]:
    """The pod without what an earlier injection added (its status annotation lists it)."""
    status = _status(pod)
    if status is None:
        return pod
    pod = clone(pod)
    spec = pod.setdefault("spec", {})
    for field, key in (("containers", "containers"), ("initContainers", "initContainers")):
        names = set(status.get(key) or [])
        if field in spec:
            spec[field] = [c for c in spec[field] if c.get("name") not in names]
    annotations = pod["metadata"].setdefault("annotations", {})
    port = next((v for k, v in annotations.items() if _sanitize(k) == "prometheus_io_port"), None)
    if port == str(status_port):
        _clear_prometheus(annotations)
    annotations.pop(STATUS_ANNOTATION, None)
    return pod


def _clear_prometheus(annotations: dict[str, str]) -> None:
    for key in [k for k in annotations if _sanitize(k) in _PROMETHEUS]:
        del annotations[key]


def _reinsert_overrides(pod: dict[str, Any]) -> dict[str, Any]:
    text = ((pod.get("metadata") or {}).get("annotations") or {}).get(OVERRIDES_ANNOTATION)
    if not text:
        return pod
    try:
        overrides = json.loads(text)
    except ValueError as error:
        raise InjectionError(f"annotation {OVERRIDES_ANNOTATION} is not JSON: {error}") from None
    pod = clone(pod)
    spec = pod.setdefault("spec", {})
    for field in ("containers", "initContainers"):
        for container in overrides.get(field) or []:
            if find(spec.get(field) or [], container.get("name")) is None:
                spec.setdefault(field, []).append(container)
    return pod


def _template_names(pod: Mapping[str, Any], settings: Settings) -> list[str]:
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    if TEMPLATES_ANNOTATION in annotations:
        names = [n.strip() for n in annotations[TEMPLATES_ANNOTATION].split(",")]
    else:
        names = list(settings.config.default_templates)
    out: list[str] = []
    for name in names:
        out.extend(settings.config.aliases.get(name, (name,)))
    return out


def _native(pod: Mapping[str, Any], settings: Settings) -> bool:
    value = ((pod.get("metadata") or {}).get("annotations") or {}).get(NATIVE_ANNOTATION)
    if value == "true":
        return True
    if value == "false":
        return False
    return settings.native_sidecar


def template_data(
    pod: Mapping[str, Any],
    settings: Settings,
    workload: Workload,
    proxy_config: Any,
    mesh: config_pb2.MeshConfig,
) -> TemplateData:
    values = settings.values
    glob = values.get("global") or {}
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    proxy_image = (glob.get("proxy") or {}).get("image") or "proxyv2"
    init_image = (glob.get("proxy_init") or {}).get("image") or "proxyv2"
    image_type = proxy_config.image.image_type if proxy_config.HasField("image") else ""
    inbound = mesh.inbound_traffic_policy.mode
    return TemplateData(
        TypeMeta=Names(APIVersion=workload.api_version, Kind=workload.kind),
        DeploymentMeta=Names(Name=workload.name, Namespace=workload.namespace),
        ObjectMeta=Kube(pod.get("metadata") or {}, "ObjectMeta"),
        Spec=Kube(pod.get("spec") or {}, "PodSpec"),
        ProxyConfig=Proto(proxy_config),
        MeshConfig=Proto(mesh),
        Values=values,
        Revision=settings.revision,
        NativeSidecars=_native(pod, settings),
        ProxyImage=image_url(values, proxy_image, annotations, image_type),
        ProxyInitImage=image_url(values, init_image, annotations),
        ProxyUID=1337,
        ProxyGID=1337,
        InboundTrafficPolicyMode="localhost"
        if inbound == config_pb2.MeshConfig.InboundTrafficPolicy.LOCALHOST
        else "passthrough",
        CompliancePolicy="",
    )


def _render(settings: Settings, name: str, data: TemplateData) -> dict[str, Any]:
    template = settings.config.templates.get(name)
    if template is None:
        known = ", ".join(sorted(settings.config.templates))
        raise InjectionError(f'requested template "{name}" not found; have {known}')
    try:
        text = template.execute(data)
    except gotemplate.ExecError as error:
        raise InjectionError(f"failed to run injection template: {error}") from None
    try:
        rendered = yaml.load(text, Loader=_LOADER) or {}
    except yaml.YAMLError as error:
        raise InjectionError(
            f"failed parsing generated injected YAML (check Istio sidecar injector configuration): {error}"
        ) from None
    if not isinstance(rendered, dict):
        raise InjectionError("the injection template did not render a pod overlay (a mapping)")
    return rendered


def _merge(pod: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    try:
        return merge_pod(pod, overlay)
    except PatchError as error:
        raise InjectionError(f"failed applying injection overlay: {error}") from None


def inject_pod(pod: Mapping[str, Any], settings: Settings, *, workload: Workload | None = None,
               proxy_envs: Mapping[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """The injected pod (a new dict); raises InjectionError."""
    original = drop_nulls(clone(dict(pod)))
    original.setdefault("metadata", {})
    original.setdefault("spec", {})
    metadata = original["metadata"]
    annotations = metadata.get("annotations") or {}
    try:
        annotation_checks.validate(annotations)
    except annotation_checks.AnnotationError as error:
        raise InjectionError(str(error)) from None
    workload = workload or workload_of(original)
    mesh = settings.mesh
    if PROXY_CONFIG_ANNOTATION in annotations:
        try:
            mesh = meshconfig.apply_proxy_config(annotations[PROXY_CONFIG_ANNOTATION], mesh)
        except meshconfig.MeshConfigError as error:
            raise InjectionError(str(error)) from None
    proxy_config = mesh.default_config
    envs = dict(proxy_envs or {})
    glob = settings.values.get("global") or {}
    cluster = (glob.get("multiCluster") or {}).get("clusterName") or ""
    network = glob.get("network") or ""
    cluster = envs.get("ISTIO_META_CLUSTER_ID") or cluster
    network = envs.get("ISTIO_META_NETWORK") or network
    network = (metadata.get("labels") or {}).get(NETWORK_LABEL, network)
    if cluster:
        envs["ISTIO_META_CLUSTER_ID"] = cluster
    if network:
        envs["ISTIO_META_NETWORK"] = network

    status_port = mesh.default_config.status_port
    stripped = _reinsert_overrides(_strip(original, status_port))
    data = template_data(stripped, settings, workload, proxy_config, mesh)
    merged = clone(original)
    template_pod: dict[str, Any] = {}
    for name in _template_names(original, settings):
        overlay = _render(settings, name, data)
        template_pod = _merge(template_pod, overlay)
        if (_native(merged, settings) and find(_containers(template_pod, "initContainers"), PROXY) is not None
                and find(_containers(merged, "containers"), PROXY) is not None):  # fmt: skip
            spec = merged["spec"]
            proxy = find(spec["containers"], PROXY)
            spec["containers"] = [c for c in spec["containers"] if c.get("name") != PROXY]
            spec.setdefault("initContainers", []).append(proxy)
        merged = _merge(merged, overlay)
    merged = drop_nulls(merged)
    template_pod = drop_nulls(template_pod)
    merged = _reapply_overrides(merged, original, template_pod, proxy_config)
    _post_process(merged, template_pod, settings, mesh, envs)
    return merged


def _reapply_overrides(final: dict[str, Any], original: dict[str, Any], template_pod: dict[str, Any],
                       proxy_config: Any) -> dict[str, Any]:  # fmt: skip
    """Containers the user wrote under a template container's name win over the template's."""
    annotations = original["metadata"].get("annotations") or {}
    existing = (
        json.loads(annotations[OVERRIDES_ANNOTATION])
        if annotations.get(OVERRIDES_ANNOTATION)
        else {}
    )
    status = _status(original)
    injected = status or {}
    overrides: dict[str, list[dict[str, Any]]] = {}
    for field in ("containers", "initContainers"):
        for container in _containers(template_pod, field):
            name = str(container.get("name", ""))
            match = find(existing.get(field) or [], name)
            if name in (injected.get(field) or []) and match is None:
                continue  # injected before, and the user had not written it: the template's
            if match is None:
                match = (find(_containers(original, "containers"), name) if field == "containers"
                         else find(_containers(original, "containers"), name) or find(_containers(original, "initContainers"), name))  # fmt: skip
            if match is None:
                continue
            overlay = clone(match)
            if overlay.get("image") == AUTO_IMAGE:
                overlay.pop("image")
            overrides.setdefault(field, []).append(overlay)
            patch = {"spec": {field: [overlay]}}
            final = drop_nulls(_merge(final, patch))
    if status is None and overrides:
        final["metadata"].setdefault("annotations", {})[OVERRIDES_ANNOTATION] = json.dumps(
            overrides, separators=(",", ":")
        )
    _adjust_init_user(final, original, proxy_config)
    return final


def _adjust_init_user(final: dict[str, Any], original: dict[str, Any], proxy_config: Any) -> None:
    user = find_sidecar(original)
    context = (user or {}).get("securityContext") or {}
    if user is None or ("runAsUser" not in context and "runAsGroup" not in context):
        return
    init = find(_containers(final, "initContainers"), INIT) or find(
        _containers(final, "initContainers"), VALIDATION
    )
    if init is None:
        return
    annotations = final["metadata"].get("annotations") or {}
    tproxy = (
        proxy_config.interception_mode == proxy_config.TPROXY
        or annotations.get("sidecar.istio.io/interceptionMode") == "TPROXY"
    )
    if tproxy and "runAsUser" in context:
        sidecar = find_sidecar(final)
        if sidecar is not None:
            sidecar.setdefault("securityContext", {})["runAsUser"] = 0
    if not tproxy and init.get("name") == VALIDATION:
        init_context = init.setdefault("securityContext", {})
        for key in ("runAsUser", "runAsGroup"):
            if key in context:
                init_context[key] = context[key]
    uid = context.get("runAsUser")
    if not uid:
        return
    args = init.get("args") or []
    for i, arg in enumerate(args[:-1]):
        if arg == "-u":
            args[i + 1] = str(uid)
            return


def _post_process(pod: dict[str, Any], template_pod: dict[str, Any], settings: Settings,
                  mesh: config_pb2.MeshConfig, envs: Mapping[str, str]) -> None:  # fmt: skip
    metadata = pod.setdefault("metadata", {})
    annotations = metadata.setdefault("annotations", {})
    labels = metadata.setdefault("labels", {})
    sidecar = find_sidecar(pod)
    previous = STATUS_ANNOTATION in annotations
    if sidecar is not None and envs:
        sidecar["env"] = _cluster_envs(sidecar.get("env") or [], envs)
    _prometheus_merge(pod, mesh)
    webhook_values = settings.values.get("sidecarInjectorWebhook") or {}
    if sidecar is not None and probes.should_rewrite(
        annotations, bool(webhook_values.get("rewriteAppHTTPProbe"))
    ):
        dumped = probes.dump_app_probers(pod, mesh.default_config.status_port)
        if dumped:
            sidecar["env"] = _merge_probers(previous, sidecar.get("env") or [], dumped)
        probes.rewrite_probes(pod, mesh.default_config.status_port)
    if "ISTIO_META_NETWORK" in envs:
        labels[NETWORK_LABEL] = envs["ISTIO_META_NETWORK"]
    annotations[STATUS_ANNOTATION] = status_annotation(template_pod, settings.revision)
    annotations.update(settings.config.injected_annotations)
    _reorder(pod, mesh, settings)


def _merge_probers(previous: bool, env: list[dict[str, Any]], probers: str) -> list[dict[str, Any]]:
    entry = {"name": probes.KUBE_APP_PROBERS, "value": probers}
    if previous:
        for i, item in enumerate(env):
            if item.get("name") == probes.KUBE_APP_PROBERS:
                merged = json.loads(probers)
                merged.update(json.loads(item.get("value") or "{}"))
                env[i] = {
                    "name": probes.KUBE_APP_PROBERS,
                    "value": json.dumps(merged, separators=(",", ":")),
                }
                return env
    return [*env, entry]


def _cluster_envs(env: list[dict[str, Any]], envs: Mapping[str, str]) -> list[dict[str, Any]]:
    """The cluster's variables moved last, sorted, as Istio's injector moves them; but before
    the variables post-processing appends after them, which a pod injected before already
    carries, so that injecting it again changes nothing."""
    kept = [e for e in env if e.get("name") not in envs]
    head = [e for e in kept if e.get("name") not in _APPENDED_ENV]
    tail = [e for e in kept if e.get("name") in _APPENDED_ENV]
    return [*head, *({"name": k, "value": envs[k]} for k in sorted(envs)), *tail]


def status_annotation(template_pod: Mapping[str, Any], revision: str) -> str:
    spec = template_pod.get("spec") or {}

    def names(field: str) -> list[str] | None:
        items = [item.get("name", "") for item in spec.get(field) or []]
        return items or None

    status = {
        "initContainers": names("initContainers"),
        "containers": names("containers"),
        "volumes": names("volumes"),
        "imagePullSecrets": names("imagePullSecrets"),
        "revision": revision or "default",
    }
    return json.dumps(status, separators=(",", ":"))


def _prometheus_merge(pod: dict[str, Any], mesh: config_pb2.MeshConfig) -> None:
    annotations = pod["metadata"]["annotations"]
    scrape = True
    for key, value in annotations.items():
        if _sanitize(key) == "prometheus_io_scrape" and probes.parse_bool(value) is not None:
            scrape = bool(probes.parse_bool(value))
    merge = True
    if "prometheus.istio.io/merge-metrics" in annotations:
        merge = bool(probes.parse_bool(annotations["prometheus.istio.io/merge-metrics"]))
    elif mesh.HasField("enable_prometheus_merge"):
        merge = mesh.enable_prometheus_merge.value
    if not (scrape and merge):
        return
    target = str(mesh.default_config.status_port)
    found = {_sanitize(k): v for k, v in annotations.items()}
    if found.get("prometheus_io_port") == target:
        return
    config = {"scrape": found.get("prometheus_io_scrape", ""), "path": found.get("prometheus_io_path", ""),
              "port": found.get("prometheus_io_port", "")}  # fmt: skip
    if config["port"]:
        if not config["port"].isdigit() or not 1 <= int(config["port"]) <= 65535:
            raise InjectionError(
                f"invalid prometheus scrape configuration: invalid port {config['port']!r}"
            )
        if int(config["port"]) == int(target):
            raise InjectionError(
                f"invalid prometheus scrape configuration: port {config['port']} conflicts with agent port"
            )
    sidecar = find_sidecar(pod)
    if sidecar is not None and any(config.values()):
        sidecar.setdefault("env", []).append(
            {
                "name": PROMETHEUS_ENV,
                "value": json.dumps(config, separators=(",", ":")),
            }
        )
    _clear_prometheus(annotations)
    annotations["prometheus.io/port"] = target
    annotations["prometheus.io/path"] = "/stats/prometheus"
    annotations["prometheus.io/scrape"] = "true"


def _move(containers: list[dict[str, Any]], name: str, first: bool) -> list[dict[str, Any]]:
    match = find(containers, name)
    if match is None:
        return containers
    rest = [c for c in containers if c.get("name") != name]
    return [match, *rest] if first else [*rest, match]


def _reorder(pod: dict[str, Any], mesh: config_pb2.MeshConfig, settings: Settings) -> None:
    spec = pod["spec"]
    hold = mesh.default_config.hold_application_until_proxy_starts.value or bool(
        ((settings.values.get("global") or {}).get("proxy") or {}).get(
            "holdApplicationUntilProxyStarts"
        )
    )
    if "containers" in spec:
        spec["containers"] = _move(spec["containers"], PROXY, first=hold)
    inits = spec.get("initContainers")
    if not inits:
        return
    if find(inits, PROXY) is not None:
        for name in (CORE_DUMP, PROXY, VALIDATION, INIT):
            inits = _move(inits, name, first=True)
    else:
        inits = _move(inits, VALIDATION, first=True)
        inits = _move(inits, INIT, first=False)
        inits = _move(inits, CORE_DUMP, first=False)
    spec["initContainers"] = inits
