"""What analyzers read: every resource (from files and the live store) as an `Entry`, and
the `Snapshot` of them all with the views several analyzers share (services, workloads).

An entry keeps where it came from (`Origin`: file and line, and the line of each field), so
a message names the line at fault. Istio kinds carry their typed spec (the proto message);
the Kubernetes kinds analyze reads (Namespace, Service, Pod, Deployment) their object as a
dict. Services are the mesh's: ServiceEntries and Kubernetes Services. Workloads are the
local platform's pods (the WorkloadEntries every pod's agent registers) and Kubernetes Pods.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any

DOMAIN = "svc.cluster.local"
ISTIO_KINDS_GROUP_SUFFIX = "istio.io"
KUBERNETES_KINDS = {
    ("", "Namespace"),
    ("", "Service"),
    ("", "Pod"),
    ("", "Secret"),  # a Gateway's credentialName
    ("apps", "Deployment"),
}


@dataclasses.dataclass(frozen=True)
class Origin:
    kind: str
    name: str
    namespace: str  # "" for a cluster-scoped resource (a Namespace)
    file: str = ""  # "" for a resource read from the store
    line: int = 0  # where its document starts
    lines: Mapping[str, int] = dataclasses.field(default_factory=dict)  # field path -> line
    annotations: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def friendly_name(self) -> str:
        """Istio's: `VirtualService reviews.default`, `Namespace default`."""
        if self.namespace:
            return f"{self.kind} {self.name}.{self.namespace}"
        return f"{self.kind} {self.name}"

    def full_name(self) -> str:
        """Istio's FullName: `default/reviews`."""
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    def reference(self, path: str = "") -> str:
        """`file:line` of the field (or its nearest enclosing field), "" for store resources."""
        if not self.file:
            return ""
        line = self.line
        while path:
            if path in self.lines:
                line = self.lines[path]
                break
            path = _parent(path)
        return f"{self.file}:{line}"


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


@dataclasses.dataclass(frozen=True)
class Entry:
    group: str  # networking.istio.io, "" for Kubernetes' core group, apps, ...
    kind: str
    origin: Origin
    labels: Mapping[str, str]
    spec: Any  # the proto message (Istio kinds; None when it does not parse) or the object
    problems: tuple[str, ...] = ()  # schema validation errors, "field: why"

    @property
    def name(self) -> str:
        return self.origin.name

    @property
    def namespace(self) -> str:
        return self.origin.namespace

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.origin.annotations

    def key(self) -> tuple[str, str, str, str]:
        """What makes two entries the same resource: a file's version replaces the store's."""
        return (self.group, self.kind, self.namespace, self.name)


@dataclasses.dataclass(frozen=True)
class Port:
    number: int
    name: str
    protocol: str
    target: str = ""


@dataclasses.dataclass(frozen=True)
class Service:
    """A service of the mesh: a ServiceEntry's hosts, or a Kubernetes Service's FQDN."""

    entry: Entry
    hosts: tuple[str, ...]  # fully qualified
    ports: tuple[Port, ...]
    namespace: str
    exported_to_all: bool
    selector: Mapping[str, str]  # of workloads in its namespace; {} selects none


@dataclasses.dataclass(frozen=True)
class Workload:
    entry: Entry
    kind: str  # WorkloadEntry | Pod
    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: frozenset[int]  # the ports it declares (WorkloadEntry ports, container ports)


def fqdn(host: str, namespace: str) -> str:
    """Istio's analyzers' expansion: a dotless, non-wildcard name is `<name>.<ns>.svc.cluster.local`."""
    if host.startswith("*") or "." in host:
        return host
    return f"{host}.{namespace}.{DOMAIN}"


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def selector_string(selector: Mapping[str, str]) -> str:
    """As Kubernetes prints a label selector: `app=reviews,version=v1`."""
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


class Snapshot:
    def __init__(self, entries: Iterable[Entry], *, istio_namespace: str = "istio-system") -> None:
        self.entries = list(entries)
        self.istio_namespace = istio_namespace
        self._by_kind: dict[str, list[Entry]] = {}
        for entry in self.entries:
            self._by_kind.setdefault(entry.kind, []).append(entry)

    def of(self, kind: str) -> list[Entry]:
        """The entries of a kind that parsed (Istio kinds with no spec are left out)."""
        return [e for e in self._by_kind.get(kind, []) if e.spec is not None]

    def exists(self, kind: str, namespace: str, name: str) -> bool:
        return any(e.namespace == namespace and e.name == name for e in self._by_kind.get(kind, []))

    @functools.cached_property
    def services(self) -> list[Service]:
        found = []
        for entry in self.of("ServiceEntry"):
            se = entry.spec
            found.append(
                Service(
                    entry=entry,
                    hosts=tuple(fqdn(h, entry.namespace) for h in se.hosts),
                    ports=tuple(Port(p.number, p.name, p.protocol) for p in se.ports),
                    namespace=entry.namespace,
                    exported_to_all=not se.export_to or "*" in se.export_to,
                    selector=dict(se.workload_selector.labels),
                )
            )
        for entry in self.of("Service"):
            spec = entry.spec.get("spec") or {}
            export = entry.annotations.get("networking.istio.io/exportTo", "*")
            found.append(
                Service(
                    entry=entry,
                    hosts=(f"{entry.name}.{entry.namespace}.{DOMAIN}",),
                    ports=tuple(
                        _service_port(p) for p in spec.get("ports") or [] if isinstance(p, dict)
                    ),
                    namespace=entry.namespace,
                    exported_to_all="*" in [e.strip() for e in export.split(",")],
                    selector=dict(spec.get("selector") or {}),
                )
            )
        return found

    @functools.cached_property
    def workloads(self) -> list[Workload]:
        found = []
        for entry in self.of("WorkloadEntry"):
            we = entry.spec
            found.append(
                Workload(
                    entry=entry,
                    kind="WorkloadEntry",
                    name=entry.name,
                    namespace=entry.namespace,
                    labels=dict(we.labels) or dict(entry.labels),
                    ports=frozenset(int(p) for p in we.ports.values()),
                )
            )
        for entry in self.of("Pod"):
            spec = entry.spec.get("spec") or {}
            ports = {
                int(p["containerPort"])
                for c in spec.get("containers") or []
                for p in (c.get("ports") or [])
                if isinstance(p, dict) and isinstance(p.get("containerPort"), int)
            }
            found.append(
                Workload(
                    entry, "Pod", entry.name, entry.namespace, dict(entry.labels), frozenset(ports)
                )
            )
        return found

    def find_service(self, host: str, namespace: str) -> Service | None:
        """The service a destination host names, seen from `namespace` (Istio's lookup order:
        exact hosts exported everywhere, then local ones, then wildcard hosts)."""
        wanted = fqdn(host, namespace)
        visible = [s for s in self.services if s.exported_to_all or s.namespace == namespace]
        for service in sorted(visible, key=lambda s: not s.exported_to_all):
            if wanted in service.hosts:
                return service
        bare = wanted.removeprefix("*")
        for service in visible:
            for h in service.hosts:
                if h.startswith("*") and bare.endswith(h[1:]):
                    return service
        return None

    def services_selecting(self, workload: Workload) -> list[Service]:
        return [
            s
            for s in self.services
            if s.namespace == workload.namespace
            and s.selector
            and selects(s.selector, workload.labels)
        ]


def _service_port(port: Mapping[str, Any]) -> Port:
    number = port.get("port")
    target = port.get("targetPort", number)
    return Port(
        int(number) if isinstance(number, int) else 0,
        str(port.get("name") or ""),
        str(port.get("appProtocol") or port.get("protocol") or "TCP"),
        str(target if target is not None else ""),
    )
