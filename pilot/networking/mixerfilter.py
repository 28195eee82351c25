"""The Mixer filters in every proxy's config, from MeshConfig (Istio 1.x's mixer plugin).

With `mixerCheckServer` or `mixerReportServer` set, each HTTP connection manager gets the
Mixer filter, a WebAssembly module (proxy/extensions/mixer) loaded by Envoy's
`envoy.filters.http.wasm` with Istio's HttpClientConfig as its configuration:

- inbound listeners Check and Report as the destination: the workload's own attributes
  (destination.uid, .namespace, .ip, .labels, .workload.*), one ServiceConfig per inbound
  cluster with the service's attributes and the QuotaSpecs bound to it;
- outbound listeners (and gateways) Report as the source, with one ServiceConfig per
  destination service, and forward the source's attributes to the server's sidecar in
  `x-istio-attributes`. Sidecars Check as clients only with enableClientSidePolicyCheck;
  gateways always do.

Per workload, the pod annotation `policy.istio.io/check` (`enable`, `disable`,
`allow-on-error`) overrides disablePolicyChecks and policyCheckFailOpen, as in Istio 1.4.

Istio's Mixer learned the workloads' labels from Kubernetes (its kubernetesenv adapter);
here the proxies say them: each side's static attributes carry its labels and workload,
and a client forwards its own in x-istio-attributes.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from typing import Any

# Imported so json_format resolves the filter's @type.
from envoy.extensions.filters.http.wasm.v3 import wasm_pb2  # noqa: F401
from google.protobuf import json_format

from api.mesh.v1alpha1 import config_pb2
from api.mixer.v1 import attributes_pb2
from api.mixer.v1.config.client import client_config_pb2, quota_pb2
from pilot.model.push_context import PushContext
from pilot.model.service import Service
from pilot.networking import names
from pilot.networking.proxyview import ProxyView
from pkg.config.resource import Resource

log = logging.getLogger("pilot.mixer")

FILTER_NAME = "mixer"
HTTP_ROOT_ID = "mixer"
VM_ID = "mixer"
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
DEFAULT_CONFIG = "default"  # the service config of requests to no known service

# policy.istio.io/check values (Istio 1.4's pilot mixer plugin).
POLICY_CHECK_ANNOTATION = "policy.istio.io/check"
CHECK_ENABLE = "enable"
CHECK_DISABLE = "disable"
CHECK_ENABLE_ALLOW = "allow-on-error"

_HTTP2_OPTIONS = {
    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}},
    }
}


def enabled(push: PushContext) -> bool:
    mesh = push.mesh.mesh_config
    return bool(mesh.mixer_check_server or mesh.mixer_report_server) and bool(
        push.mesh.mixer_filter_wasm
    )


def add_to_listeners(
    proxy: ProxyView, push: PushContext, listeners: Sequence[dict[str, Any]]
) -> None:
    """Puts the Mixer filter into every HTTP connection manager of `listeners` (the listener
    dicts change; their filter lists are replaced), after authorization and before fault
    injection and routing."""
    if not enabled(push):
        return
    inbound_filter = outbound_filter = None
    for listener in listeners:
        inbound = listener.get("traffic_direction") == "INBOUND"
        for chain in listener.get("filter_chains", ()):
            for network_filter in chain.get("filters", ()):
                config = network_filter.get("typed_config", {})
                filters = config.get("http_filters")
                if filters is None:
                    continue
                if inbound:
                    inbound_filter = inbound_filter or http_filter(
                        push, inbound_config(proxy, push)
                    )
                    config["http_filters"] = _with(filters, inbound_filter)
                else:
                    outbound_filter = outbound_filter or http_filter(
                        push, outbound_config(proxy, push)
                    )
                    config["http_filters"] = _with(filters, outbound_filter)


def _with(filters: list[dict[str, Any]], mixer: dict[str, Any]) -> list[dict[str, Any]]:
    """A new list (filter chains may share one): `filters` with `mixer` inserted."""
    position = next(
        (
            i
            for i, f in enumerate(filters)
            if f.get("name") in ("envoy.filters.http.fault", "envoy.filters.http.router")
        ),
        len(filters),
    )
    return [*filters[:position], mixer, *filters[position:]]


def http_filter(push: PushContext, config: client_config_pb2.HttpClientConfig) -> dict[str, Any]:
    """envoy.filters.http.wasm running the Mixer module with `config` (as JSON)."""
    return {
        "name": FILTER_NAME,
        "typed_config": {
            "@type": WASM_TYPE,
            "config": {
                "name": FILTER_NAME,
                "root_id": HTTP_ROOT_ID,
                "vm_config": {
                    # One VM per worker for all the proxy's Mixer filters.
                    "vm_id": VM_ID,
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": push.mesh.mixer_filter_wasm}},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": to_json(config),
                },
            },
        },
    }


def to_json(config: Any) -> str:
    # Sorted, so an unchanged config is the same text and Envoy keeps its filter (and cache).
    return json_format.MessageToJson(config, indent=None, sort_keys=True)


# The configs.


def inbound_config(proxy: ProxyView, push: PushContext) -> client_config_pb2.HttpClientConfig:
    mesh = push.mesh.mesh_config
    uid = _uid(proxy)
    attrs = _attributes(
        {
            "destination.uid": uid,
            "destination.namespace": proxy.namespace,
            "destination.name": _pod(proxy),
            "destination.labels": dict(proxy.labels),
            "destination.workload.name": _workload(proxy),
            "destination.workload.namespace": proxy.namespace,
            "context.reporter.uid": uid,
            "context.reporter.kind": "inbound",
        }
    )
    if _is_ip(proxy.ip):
        attrs.attributes["destination.ip"].bytes_value = ipaddress.ip_address(proxy.ip).packed
    config = client_config_pb2.HttpClientConfig(
        transport=transport(push, proxy), mixer_attributes=attrs
    )
    check_off = disable_policy_checks(mesh, proxy, inbound=True)
    report_off = not mesh.mixer_report_server or mesh.disable_mixer_http_reports
    ports: dict[int, Service] = {}
    for endpoint in push.index.endpoints_at(proxy.ip):
        service = push.services.get(endpoint.hostname)
        if service is not None:
            ports.setdefault(endpoint.port, service)
    for port, service in sorted(ports.items()):
        key = names.inbound_cluster(port)
        service_config = config.service_configs[key]
        service_config.disable_check_calls = check_off
        service_config.disable_report_calls = report_off
        service_config.mixer_attributes.CopyFrom(_service_attributes(service, push))
        for spec in quota_specs_for(service, push):
            service_config.quota_spec.add().CopyFrom(spec)
        if not config.default_destination_service:
            config.default_destination_service = key
    if not config.default_destination_service:
        config.service_configs[DEFAULT_CONFIG].disable_check_calls = check_off
        config.service_configs[DEFAULT_CONFIG].disable_report_calls = report_off
        config.default_destination_service = DEFAULT_CONFIG
    return config


def outbound_config(proxy: ProxyView, push: PushContext) -> client_config_pb2.HttpClientConfig:
    """A sidecar's outbound listener or a gateway: the client side of every request."""
    mesh = push.mesh.mesh_config
    uid = _uid(proxy)
    source = {
        "source.uid": uid,
        "source.namespace": proxy.namespace,
        "source.name": _pod(proxy),
        "source.labels": dict(proxy.labels),
        "source.workload.name": _workload(proxy),
        "source.workload.namespace": proxy.namespace,
    }
    attrs = _attributes(
        {**source, "context.reporter.uid": uid, "context.reporter.kind": "outbound"}
    )
    config = client_config_pb2.HttpClientConfig(
        transport=transport(push, proxy),
        mixer_attributes=attrs,
        forward_attributes=_attributes(source),
        default_destination_service=DEFAULT_CONFIG,
        ignore_forwarded_attributes=proxy.type == "router",
    )
    check_off = disable_policy_checks(mesh, proxy, inbound=False)
    report_off = not mesh.mixer_report_server or mesh.disable_mixer_http_reports
    default = config.service_configs[DEFAULT_CONFIG]
    default.disable_check_calls = check_off
    default.disable_report_calls = report_off
    for service in sorted(push.services.values(), key=lambda s: s.hostname):
        service_config = config.service_configs[service.hostname]
        service_config.disable_check_calls = check_off
        service_config.disable_report_calls = report_off
        attributes = _service_attributes(service, push)
        service_config.mixer_attributes.CopyFrom(attributes)
        service_config.forward_attributes.CopyFrom(attributes)
    return config


def transport(push: PushContext, proxy: ProxyView) -> client_config_pb2.TransportConfig:
    mesh = push.mesh.mesh_config
    policy = client_config_pb2.NetworkFailPolicy(
        policy=client_config_pb2.NetworkFailPolicy.FAIL_OPEN
        if fail_open(mesh, proxy)
        else client_config_pb2.NetworkFailPolicy.FAIL_CLOSE,
        max_retry=0,
    )
    policy.base_retry_wait.FromMilliseconds(80)
    policy.max_retry_wait.FromMilliseconds(1000)
    out = client_config_pb2.TransportConfig(
        network_fail_policy=policy,
        check_cluster=cluster_name(mesh.mixer_check_server),
        report_cluster=cluster_name(mesh.mixer_report_server),
        disable_report_batch=mesh.disable_report_batch,
        disable_check_cache=not push.mesh.mixer_check_cache,
        report_batch_max_entries=mesh.report_batch_max_entries,
    )
    if mesh.HasField("report_batch_max_time"):
        out.report_batch_max_time.CopyFrom(mesh.report_batch_max_time)
    return out


def policy_check(proxy: ProxyView) -> str:
    """The pod's `policy.istio.io/check` annotation (node metadata ANNOTATIONS, or the key
    itself at the top level as Istio 1.1-1.4 agents sent it), or ""."""
    annotations = proxy.metadata.get("ANNOTATIONS")
    if isinstance(annotations, Mapping) and POLICY_CHECK_ANNOTATION in annotations:
        return str(annotations[POLICY_CHECK_ANNOTATION])
    return str(proxy.metadata.get(POLICY_CHECK_ANNOTATION, ""))


def disable_policy_checks(mesh: config_pb2.MeshConfig, proxy: ProxyView, *, inbound: bool) -> bool:
    if not mesh.mixer_check_server:
        return True  # Istio: no check server means no policy checks
    if inbound:
        disable = mesh.disable_policy_checks
    elif mesh.disable_policy_checks:
        disable = True
    else:
        # Gateways check as clients; sidecars only when asked to.
        disable = proxy.type != "router" and not mesh.enable_client_side_policy_check
    match policy_check(proxy):
        case "disable":
            disable = True
        case "enable" | "allow-on-error":
            disable = False
    return disable


def fail_open(mesh: config_pb2.MeshConfig, proxy: ProxyView) -> bool:
    match policy_check(proxy):
        case "enable":
            return False
        case "allow-on-error" | "disable":
            return True
    return mesh.policy_check_fail_open


def cluster_name(address: str) -> str:
    """Istio's name for the cluster of a Mixer address: outbound|<port>||<host>."""
    if not address:
        return ""
    host, port = _split_address(address)
    return names.outbound_cluster(host, port)


def clusters(push: PushContext) -> list[dict[str, Any]]:
    """The clusters the filters call Mixer through (HTTP/2), for Mixer addresses that are
    not services of the mesh (those have their outbound cluster already)."""
    if not enabled(push):
        return []
    mesh = push.mesh.mesh_config
    out: dict[str, dict[str, Any]] = {}
    for address in (mesh.mixer_check_server, mesh.mixer_report_server):
        if not address:
            continue
        host, port = _split_address(address)
        if host in push.services:
            continue
        name = names.outbound_cluster(host, port)
        out[name] = {
            "name": name,
            "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
            "connect_timeout": f"{push.mesh.connect_timeout}s",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [
                    {
                        "lb_endpoints": [
                            {
                                "endpoint": {
                                    "address": {
                                        "socket_address": {"address": host, "port_value": port}
                                    }
                                }
                            }
                        ]
                    }
                ],
            },
            "typed_extension_protocol_options": _HTTP2_OPTIONS,
        }
    return list(out.values())


# QuotaSpecs.


def quota_specs_for(service: Service, push: PushContext) -> list[quota_pb2.QuotaSpec]:
    """The QuotaSpecs bound to a service by QuotaSpecBindings, in name order (Istio's
    QuotaSpecByDestination)."""
    specs = {(s.metadata.namespace, s.metadata.name): s for s in push.quota_specs}
    chosen: dict[tuple[str, str], Resource] = {}
    for binding in push.quota_spec_bindings:
        if not any(_binds(s, binding, service, push) for s in binding.spec.services):
            continue
        for reference in binding.spec.quota_specs:
            key = (reference.namespace or binding.metadata.namespace, reference.name)
            if key in specs:
                chosen[key] = specs[key]
    return [chosen[key].spec for key in sorted(chosen, key=lambda k: (k[1], k[0]))]


def _binds(target: Any, binding: Resource, service: Service, push: PushContext) -> bool:
    if target.service:
        return target.service == "*" or target.service == service.hostname
    namespace = target.namespace or binding.metadata.namespace
    if target.name == "*":
        return namespace == service.namespace
    domain = target.domain or f"svc.{push.mesh.domain_suffix}"
    return f"{target.name}.{namespace}.{domain}" == service.hostname


# Attributes.


def _attributes(values: Mapping[str, Any]) -> attributes_pb2.Attributes:
    out = attributes_pb2.Attributes()
    for name, value in values.items():
        if isinstance(value, Mapping):
            if value:
                out.attributes[name].string_map_value.entries.update(value)
        elif value:
            out.attributes[name].string_value = value
    return out


def _service_attributes(service: Service, push: PushContext) -> attributes_pb2.Attributes:
    """destination.service.* as Istio's ServiceAttributes give them: a Kubernetes-style
    host `<name>.<namespace>.svc.<domain>` names `<name>`; other hosts name themselves."""
    suffix = f".{service.namespace}.svc.{push.mesh.domain_suffix}"
    name = service.hostname
    if service.hostname.endswith(suffix) and "." not in service.hostname[: -len(suffix)]:
        name = service.hostname[: -len(suffix)]
    return _attributes(
        {
            "destination.service.host": service.hostname,
            "destination.service.name": name,
            "destination.service.namespace": service.namespace,
            "destination.service.uid": f"istio://{service.namespace}/services/{name}",
        }
    )


def _pod(proxy: ProxyView) -> str:
    return str(proxy.metadata.get("NAME", ""))


def _workload(proxy: ProxyView) -> str:
    return str(proxy.metadata.get("WORKLOAD_NAME", "") or _pod(proxy))


def _uid(proxy: ProxyView) -> str:
    """Istio's kubernetes://<pod>.<namespace>."""
    return f"kubernetes://{_pod(proxy)}.{proxy.namespace}"


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def check_mesh_config(mesh: config_pb2.MeshConfig) -> list[str]:
    """Problems with the Mixer fields of a MeshConfig (empty when fine)."""
    problems = []
    for field in ("mixer_check_server", "mixer_report_server"):
        address = getattr(mesh, field)
        if not address:
            continue
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            problems.append(f"{field}: {address!r} is not host:port")
    return problems
