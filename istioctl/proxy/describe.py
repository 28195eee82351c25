"""`istioctl x describe pod <pod>`: the Istio configuration that applies to one pod.

The pod is its WorkloadEntry (the local platform's Pod); from the store come the services
that select it, the DestinationRule and VirtualServices of each service (which subsets take
the pod, which routes reach it, whether an ingress gateway exposes it); from the pod's Envoy
the mutual TLS mode its inbound listener really enforces and the RBAC policies in force.
The layout is Istio's (`Pod:`, `Service:`, `DestinationRule: ... for "host"`, ...).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from istioctl import target
from istioctl.proxy import authn, authz
from istioctl.proxy.admin import ProxyError, config_dump, split_pod
from pkg.config.kinds import ALL
from pkg.config.resource import Resource
from pkg.kube import errors

DOMAIN = "svc.cluster.local"
STATS_PORT = 15090
_RULE = "--------------------"


def describe_pod(args: argparse.Namespace) -> int:
    pod, namespace = split_pod(args.pod, args)
    config = _Config(args)
    entry = config.get("WorkloadEntry", pod, namespace)
    if entry is None:
        print(f'error: pod "{pod}.{namespace}" not found (no WorkloadEntry registers it)', file=sys.stderr)  # fmt: skip
        return 1
    we = entry.spec
    labels = dict(we.labels) or dict(entry.metadata.labels)
    ports = ", ".join([f"{p} ({labels.get('app', pod)})" for p in sorted(set(we.ports.values()))]
                      + [f"{STATS_PORT} (istio-proxy)"])  # fmt: skip
    out = [f"Pod: {pod}", f"   Pod Ports: {ports}",
           f"   Pod IP: {we.address}, Service Account: {we.service_account or 'default'}"]  # fmt: skip
    services = [
        s
        for s in config.list("ServiceEntry")
        if s.metadata.namespace == namespace
        and s.spec.workload_selector.labels
        and _selects(dict(s.spec.workload_selector.labels), labels)
    ]
    if not services:
        out.append(f"Suggestion: no ServiceEntry in {namespace} selects this pod")
    for service in services:
        out.append(_RULE)
        out += _describe_service(config, service, entry, labels)
    try:
        dump = config_dump(str(we.address))
        mode = authn.server_mode_of(list(authz.listeners_of(dump)))
        policies = authz.enforced(list(authz.inbound_listeners(dump)))
    except ProxyError as error:
        out.append(_RULE)
        out.append(f"Warning: the pod's Envoy did not answer ({error}); TLS and RBAC unknown")
    else:
        out.append(_RULE)
        out += ["Effective PeerAuthentication:", f"   Workload mTLS mode: {mode}"]
        if policies:
            out.append("RBAC policies: " + ", ".join(f"{p.name} ({p.action})" for p in policies))
    print("\n".join(out))
    return 0


class _Config:
    """The store's resources, each kind read once."""

    def __init__(self, args: argparse.Namespace) -> None:
        self._args = args
        self._cache: dict[str, list[Resource]] = {}

    def list(self, kind: str) -> list[Resource]:
        if kind not in self._cache:
            schema = next(s for s in ALL if s.kind == kind)
            with target.store_client(self._args) as client:
                self._cache[kind] = client.list(schema).items
        return self._cache[kind]

    def get(self, kind: str, name: str, namespace: str) -> Resource | None:
        try:
            return next(
                r
                for r in self.list(kind)
                if (r.metadata.name, r.metadata.namespace) == (name, namespace)
            )
        except StopIteration:
            return None
        except errors.NotFound:
            return None


def _describe_service(config: _Config, service: Resource, pod: Resource, labels: dict[str, str]) -> list[str]:  # fmt: skip
    se, namespace = service.spec, service.metadata.namespace
    out = [f"Service: {service.metadata.name}"]
    for port in se.ports:
        target_port = pod.spec.ports.get(port.name, port.target_port or port.number)
        out.append(
            f"   Port: {port.name} {port.number}/{port.protocol} targets pod port {target_port}"
        )
    hosts = {_fqdn(h, namespace) for h in se.hosts}
    subsets: list[str] = []
    for dr in config.list("DestinationRule"):
        if _fqdn(dr.spec.host, dr.metadata.namespace) not in hosts:
            continue
        out.append(f'DestinationRule: {dr.metadata.name} for "{dr.spec.host}"')
        matching = [s.name for s in dr.spec.subsets if _selects(dict(s.labels), labels)]
        other = [s.name for s in dr.spec.subsets if s.name not in matching]
        subsets += matching
        if dr.spec.subsets:
            out.append(f"   Matching subsets: {','.join(matching) or '(none)'}")
            if other:
                out.append(f"      (Non-matching subsets {','.join(other)})")
        out += _traffic_policy(dr.spec.traffic_policy)
    for vs in config.list("VirtualService"):
        vs_ns = vs.metadata.namespace
        if not any(_fqdn(h, vs_ns) in hosts for h in vs.spec.hosts) and not _routes_to(vs, hosts):
            continue
        out += _describe_virtual_service(config, vs, hosts, set(subsets))
    return out


def _traffic_policy(policy: Any) -> list[str]:
    if policy.ByteSize() == 0:
        return ["   No Traffic Policy"]
    out = []
    if policy.HasField("tls"):
        mode = (
            policy.tls.DESCRIPTOR.fields_by_name["mode"]
            .enum_type.values_by_number[policy.tls.mode]
            .name
        )
        out.append(f"   Traffic Policy TLS Mode: {mode}")
    kinds = [name for field, name in (("tls", "TLS"), ("load_balancer", "load balancer"),
             ("connection_pool", "connection pool"), ("outlier_detection", "outlier detection"))
             if policy.HasField(field)]  # fmt: skip
    out.append(f"   Policies: {', '.join(kinds) or 'port level'}")
    return out


def _routes_to(vs: Resource, hosts: set[str]) -> bool:
    return any(
        _fqdn(d.destination.host, vs.metadata.namespace) in hosts
        for http in vs.spec.http
        for d in http.route
    )


def _describe_virtual_service(config: _Config, vs: Resource, hosts: set[str], subsets: set[str]) -> list[str]:  # fmt: skip
    out = [f"VirtualService: {vs.metadata.name}"]
    namespace = vs.metadata.namespace
    missed = []
    for http in vs.spec.http:
        when = _matches(http.match)
        for d in http.route:
            dest = d.destination
            if _fqdn(dest.host, namespace) not in hosts:
                continue
            weight = f" with weight {d.weight}%" if d.weight else ""
            if not dest.subset or dest.subset in subsets:
                subset = f' subset "{dest.subset}"' if dest.subset else ""
                out.append(f'   Route to host "{dest.host}"{subset}{weight}{_for(when)}')
            else:
                missed.append(f"      Route to non-matching subset {dest.subset}{_for(when) or ' for (everything)'}")  # fmt: skip
    if missed:
        out.append(f"   {len(missed)} additional destination(s) that will not reach this pod")
        out += missed
    for gateway_name in vs.spec.gateways:
        if gateway_name == "mesh":
            continue
        out += _exposure(config, gateway_name, namespace, vs)
    return out


def _exposure(config: _Config, name: str, namespace: str, vs: Resource) -> list[str]:
    gw_ns, slash, short = name.partition("/")
    gw_ns, short = (gw_ns, short) if slash else (namespace, name)
    gateway = config.get("Gateway", short, gw_ns)
    if gateway is None:
        return [f'   WARNING: the gateway "{name}" does not exist']
    selector = dict(gateway.spec.selector)
    out = []
    for pod in config.list("WorkloadEntry"):
        if _selects(selector, dict(pod.spec.labels) or dict(pod.metadata.labels)):
            for server in gateway.spec.servers:
                port = server.port.number
                listen = port + 8000 if port < 1024 else port  # as the local gateways bind
                scheme = "https" if server.port.protocol.upper() == "HTTPS" else "http"
                out.append(f"\nExposed on Ingress Gateway {scheme}://{pod.spec.address}:{listen}")
    uris = [_uri(m) for http in vs.spec.http for m in http.match if m.HasField("uri")]
    if out and uris:
        out.append(f"VirtualService: {vs.metadata.name}")
        out.append("   " + ", ".join(uris))
    return out


def _uri(match: Any) -> str:
    kind = match.uri.WhichOneof("match_type")
    value = getattr(match.uri, kind or "exact")
    return f"{value}*" if kind == "prefix" else (f"~{value}" if kind == "regex" else value)


def _matches(matches: Any) -> str:
    parts = []
    for match in matches:
        terms = []
        if match.HasField("uri"):
            terms.append(f"uri {_uri(match)}")
        for name, value in sorted(match.headers.items()):
            kind = value.WhichOneof("match_type") or "exact"
            terms.append(f"headers are {name}={getattr(value, kind)}")
        if terms:
            parts.append(" and ".join(terms))
    return " or ".join(parts)


def _for(when: str) -> str:
    return f" for (when {when})" if when else ""


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _fqdn(host: str, namespace: str) -> str:
    if host.startswith("*") or "." in host:
        return host
    return f"{host}.{namespace}.{DOMAIN}"
