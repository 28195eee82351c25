"""The mesh service behind a catalog offering, found in the service registry (ServiceEntries
and the WorkloadEntries they select): pure functions over resources from the informer."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from api.broker.v1alpha1 import service_instance_pb2
from broker.catalog import Offering
from pkg.config.resource import Resource


class TargetError(ValueError):
    """The offering names no usable service; the message says what was looked for."""


def resolve(offering: Offering, service_entries: Iterable[Resource]) -> service_instance_pb2.Target:
    """The ServiceEntry an offering stands for: in the offering's namespace, the one named
    `deployment`, else the one with `deployment` as a host, else one whose host starts with
    `deployment.` (the short name of `productpage.default.svc.cluster.local`)."""
    wanted = offering.deployment
    local = sorted(
        (e for e in service_entries if e.metadata.namespace == offering.namespace),
        key=lambda e: e.metadata.name,
    )
    found = (
        next((e for e in local if e.metadata.name == wanted), None)
        or next((e for e in local if wanted in e.spec.hosts), None)
        or next((e for e in local if any(h.startswith(wanted + ".") for h in e.spec.hosts)), None)
    )
    if found is None:
        raise TargetError(
            f"{offering.service.name}: no ServiceEntry named {wanted!r} or with host "
            f"{wanted!r} in namespace {offering.namespace!r} ({offering.source})"
        )
    spec = found.spec
    if not spec.workload_selector.labels:
        raise TargetError(
            f"{offering.service.name}: ServiceEntry {offering.namespace}/{found.metadata.name} "
            "selects no workloads (no workloadSelector), so no sidecar could enforce who may "
            "call it"
        )
    if not spec.hosts:
        raise TargetError(f"ServiceEntry {offering.namespace}/{found.metadata.name} has no hosts")
    return service_instance_pb2.Target(
        host=spec.hosts[0],
        namespace=offering.namespace,
        service_entry=found.metadata.name,
        workload_labels=dict(spec.workload_selector.labels),
        ports=[p.number for p in spec.ports],
        protocol=spec.ports[0].protocol.upper() if spec.ports else "",
    )


def workloads(
    target: service_instance_pb2.Target, workload_entries: Iterable[Resource]
) -> list[Resource]:
    """The WorkloadEntries serving the target (its selector, its namespace)."""
    return [
        w
        for w in workload_entries
        if w.metadata.namespace == target.namespace
        and _selects(target.workload_labels, w.spec.labels)
    ]


def server_identities(
    target: service_instance_pb2.Target,
    workload_entries: Iterable[Resource],
    service_entries: Iterable[Resource],
    trust_domain: str,
) -> list[str]:
    """The SPIFFE ids a client of the target should accept from the server: the service
    accounts of its workloads, and the ServiceEntry's subjectAltNames."""
    ids = {
        f"spiffe://{trust_domain}/ns/{target.namespace}/sa/{w.spec.service_account}"
        for w in workloads(target, workload_entries)
        if w.spec.service_account
    }
    for entry in service_entries:
        meta = entry.metadata
        if meta.namespace == target.namespace and meta.name == target.service_entry:
            ids.update(entry.spec.subject_alt_names)
    return sorted(ids)


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
