"""Kubernetes objects to the service model: pure functions of the client's models, as Istio's
`serviceregistry/kube` converts them.

- A Service is `<name>.<namespace>.svc.<domain>`; its cluster IP is the address (a headless
  Service, `clusterIP: None`, passes traffic through; an ExternalName one is mesh-external);
  the service accounts its annotations name (`alpha.istio.io/kubernetes-serviceaccounts`,
  `alpha.istio.io/canonical-serviceaccounts`) are identities it may present.
- A port's protocol is Istio's reading (pkg/config/kube ConvertProtocol): UDP stays UDP;
  `appProtocol` wins over the name, with Kubernetes' own values `kubernetes.io/h2c` (HTTP2),
  `kubernetes.io/ws` (HTTP) and `kubernetes.io/wss` (HTTPS); a `grpc-web` prefix is gRPC-Web;
  else the name up to its first `-` (`http-foo`, `grpc`, `tcp`, `mongo`, `redis`, `mysql`,
  `tls`, `https`, `http2`); anything else (no name, or a name without a known prefix) is
  Istio's UnsupportedProtocol, which captured sidecars sniff (HTTP or not, per connection),
  except on the well-known ports SMTP 25, DNS 53, MySQL 3306 and MongoDB 27017: TCP.
- Instances come from a Service's EndpointSlices (or its Endpoints object), one per ready
  address and service port (the slice's port of the same name gives the workload's port),
  joined with the address's Pod for its labels (the sidecar's `security.istio.io/tlsMode`
  among them), service account and locality (its `istio-locality` label, else its node's
  topology labels). An endpoint whose pod is not known yet is left out until it is; one that
  names no pod (an address added by hand) has no labels.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pilot.model.service import Endpoint, Port, Protocol, Resolution, Service, spiffe_identity
from pkg.config import locality

SERVICE_NAME_LABEL = "kubernetes.io/service-name"  # which Service an EndpointSlice is of
KUBERNETES_SERVICE_ACCOUNTS = "alpha.istio.io/kubernetes-serviceaccounts"
CANONICAL_SERVICE_ACCOUNTS = "alpha.istio.io/canonical-serviceaccounts"
_APP_PROTOCOLS = {
    "kubernetes.io/h2c": Protocol.HTTP2,
    "kubernetes.io/ws": Protocol.HTTP,
    "kubernetes.io/wss": Protocol.HTTPS,
}
_NAMED = {
    "tcp": Protocol.TCP,
    "udp": Protocol.UDP,
    "grpc": Protocol.GRPC,
    "grpc-web": Protocol.GRPC_WEB,
    "http": Protocol.HTTP,
    "http_proxy": Protocol.HTTP_PROXY,
    "http2": Protocol.HTTP2,
    "https": Protocol.HTTPS,
    "tls": Protocol.TLS,
    "mongo": Protocol.MONGO,
    "redis": Protocol.REDIS,
    "mysql": Protocol.MYSQL,
}
_GRPC_WEB = "grpc-web"
# Istio's ports that are TCP when nothing says otherwise: SMTP and MySQL servers speak
# first, and sniffing would wait for a client that is itself waiting.
_WELL_KNOWN_TCP = frozenset({25, 53, 3306, 27017})

PodKey = tuple[str, str]  # (namespace, name)


def hostname(name: str, namespace: str, domain: str) -> str:
    return f"{name}.{namespace}.svc.{domain}"


def protocol(
    port: int, name: str | None, ip_protocol: str | None, app_protocol: str | None
) -> Protocol:
    if ip_protocol == "UDP":
        return Protocol.UDP
    text = name or ""
    if app_protocol is not None:
        text = app_protocol
        if app_protocol in _APP_PROTOCOLS:
            return _APP_PROTOCOLS[app_protocol]
    if text[: len(_GRPC_WEB)].lower() == _GRPC_WEB:
        return Protocol.GRPC_WEB
    prefix = text.split("-", 1)[0].lower()
    if prefix in _NAMED:
        return _NAMED[prefix]
    return Protocol.TCP if port in _WELL_KNOWN_TCP else Protocol.UNSUPPORTED


def service(svc: Any, *, domain: str, trust_domain: str) -> Service:
    """A V1Service as the mesh sees it."""
    meta, spec = svc.metadata, svc.spec
    annotations = meta.annotations or {}
    resolution = Resolution.CLIENT_SIDE_LB
    address = "0.0.0.0"
    if spec.cluster_ip == "None":
        resolution = Resolution.PASSTHROUGH
    elif spec.cluster_ip:
        address = spec.cluster_ip
    external = spec.type == "ExternalName" and bool(spec.external_name)
    if external:
        resolution = Resolution.DNS_LB
    accounts = [a for a in (annotations.get(CANONICAL_SERVICE_ACCOUNTS) or "").split(",") if a]
    accounts += [
        spiffe_identity(meta.namespace, a, trust_domain)
        for a in (annotations.get(KUBERNETES_SERVICE_ACCOUNTS) or "").split(",")
        if a
    ]
    return Service(
        hostname=hostname(meta.name, meta.namespace, domain),
        namespace=meta.namespace,
        ports=tuple(
            Port(p.name or "", p.port, protocol(p.port, p.name, p.protocol, p.app_protocol))
            for p in spec.ports or ()
        ),
        address=address,
        resolution=resolution,
        mesh_external=external,
        service_accounts=tuple(accounts),
        registry="Kubernetes",
    )


def slice_service(endpoint_slice: Any) -> str | None:
    """The name of the Service an EndpointSlice belongs to."""
    return (endpoint_slice.metadata.labels or {}).get(SERVICE_NAME_LABEL)


def instances_from_slices(
    svc: Service,
    slices: Iterable[Any],
    pods: Mapping[PodKey, Any],
    nodes: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[int, tuple[Endpoint, ...]]:
    """The instances of each service port, from the Service's EndpointSlices; `nodes` are
    the labels of each node by name, where its pods' locality comes from."""
    found: dict[int, list[Endpoint]] = {p.number: [] for p in svc.ports}
    for endpoint_slice in slices:
        if endpoint_slice.address_type not in ("IPv4", "IPv6"):
            continue
        ports = {p.name or "": p.port for p in endpoint_slice.ports or () if p.port is not None}
        for endpoint in endpoint_slice.endpoints or ():
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            known, pod = _pod_of(endpoint.target_ref, pods)
            if not known:
                continue
            for address in endpoint.addresses[:1]:
                for port in svc.ports:
                    # The controller names each slice port after its service port.
                    if port.name in ports:
                        found[port.number].append(
                            _endpoint(svc, port, address, ports[port.name], pod, nodes)
                        )
    return {number: tuple(_sorted(eps)) for number, eps in found.items()}


def instances_from_endpoints(
    svc: Service,
    endpoints: Any,
    pods: Mapping[PodKey, Any],
    nodes: Mapping[str, Mapping[str, str]] | None = None,
) -> dict[int, tuple[Endpoint, ...]]:
    """The same from a V1Endpoints object (clusters that serve no EndpointSlices)."""
    found: dict[int, list[Endpoint]] = {p.number: [] for p in svc.ports}
    for subset in (endpoints.subsets or ()) if endpoints is not None else ():
        ports = {p.name or "": p.port for p in subset.ports or ()}
        for address in subset.addresses or ():  # ready ones; notReadyAddresses get nothing
            known, pod = _pod_of(address.target_ref, pods)
            if not known:
                continue
            for port in svc.ports:
                if port.name in ports:
                    found[port.number].append(
                        _endpoint(svc, port, address.ip, ports[port.name], pod, nodes)
                    )
    return {number: tuple(_sorted(eps)) for number, eps in found.items()}


def _pod_of(reference: Any, pods: Mapping[PodKey, Any]) -> tuple[bool, Any]:
    """(known, pod): an address naming no pod is known, with no pod; one naming a pod not
    (yet) known is not."""
    if reference is None or reference.kind != "Pod":
        return True, None
    pod = pods.get((reference.namespace or "", reference.name or ""))
    return pod is not None, pod


def _endpoint(
    svc: Service,
    port: Port,
    address: str,
    number: int,
    pod: Any,
    nodes: Mapping[str, Mapping[str, str]] | None,
) -> Endpoint:
    labels: dict[str, str] = {}
    account, workload, place = "", "", ""
    captured = False
    if pod is not None:
        labels = dict(pod.metadata.labels or {})
        # The pod's own label, else its node's topology labels (Istio's getPodLocality).
        node = (nodes or {}).get(pod.spec.node_name or "")
        place = locality.of_pod(labels, node)
        account = pod.spec.service_account_name or "default"
        workload = workload_name(pod)
        captured = is_captured(pod)
    return Endpoint(
        hostname=svc.hostname,
        service_port=port,
        address=address,
        port=number,
        labels=labels,
        namespace=svc.namespace,
        service_account=account,
        workload_name=workload,
        locality=place,
        captured=captured,
    )


# The init containers Istio's injection adds when it captures the pod's traffic: istio-init
# runs istio-iptables; istio-validation checks the rules the CNI plugin installed.
CAPTURE_INIT_CONTAINERS = frozenset({"istio-init", "istio-validation"})


def is_captured(pod: Any) -> bool:
    """Whether the pod's traffic goes through Istio's iptables capture."""
    return any(c.name in CAPTURE_INIT_CONTAINERS for c in pod.spec.init_containers or ())


def workload_name(pod: Any) -> str:
    """The pod's workload, as Istio names it: a ReplicaSet's pods are their Deployment's
    (`reviews-v1-5d9b8c7f4` -> `reviews-v1`), the owner otherwise, else the pod itself."""
    owners = pod.metadata.owner_references or []
    if not owners:
        return str(pod.metadata.name)
    owner = owners[0]
    if owner.kind == "ReplicaSet":
        template_hash = (pod.metadata.labels or {}).get("pod-template-hash")
        if template_hash and owner.name.endswith(f"-{template_hash}"):
            return str(owner.name[: -len(template_hash) - 1])
    return str(owner.name)


def _sorted(endpoints: list[Endpoint]) -> list[Endpoint]:
    return sorted(endpoints, key=lambda e: (e.address, e.port))
