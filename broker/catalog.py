"""The OSB catalog, made from the mesh's config: a pure function of three kinds.

As Istio 0.8's broker did: every ServiceClass is a service offering, and every ServicePlan
whose `services` lists the class (`service-class/<namespace>/<name>`) is one of its plans. A
class no plan lists is left out (OSB wants at least one plan per offering). Beside them, a
ServiceEntry annotated `broker.istio.io/catalog: "true"` is an offering of its own with one
default plan, its ids derived from the entry's namespace and name so they never change.

Ids must be unique across the catalog: an offering or plan whose id (or offering name) is
taken is left out, and the reason is reported (first in namespace/name order wins). A plan
listing several classes gets, under each, an id derived from its own and the offering's.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable, Mapping

from api.broker.v1alpha1 import service_plan_pb2
from broker.osb import model
from pkg.config.resource import Resource

CATALOG_ANNOTATION = "broker.istio.io/catalog"
DESCRIPTION_ANNOTATION = "broker.istio.io/description"
# Fixed, so derived ids are the same on every broker and every restart.
_IDS = uuid.UUID("6f1c2a6e-6a8e-4b1a-9a49-0c9f4e1b7d21")
_CLASS_KEY = re.compile(r"^service-class/([^/]+)/([^/]+)$")
DEFAULT_PROVISIONING = service_plan_pb2.Provisioning()


@dataclasses.dataclass(frozen=True)
class Offering:
    """A catalog service and where it comes from in the mesh."""

    service: model.Service
    namespace: str
    deployment: str  # a ServiceEntry name or host, resolved when an instance is provisioned
    source: str  # e.g. "ServiceClass default/productpage-service-class"


@dataclasses.dataclass(frozen=True)
class PlanEntry:
    plan: model.Plan
    provisioning: service_plan_pb2.Provisioning
    source: str


@dataclasses.dataclass(frozen=True)
class CatalogIndex:
    catalog: model.Catalog
    offerings: Mapping[str, Offering]  # by service id
    plans: Mapping[tuple[str, str], PlanEntry]  # by (service id, plan id)
    problems: tuple[str, ...]  # what was left out, and why

    def plan(self, service_id: str, plan_id: str) -> PlanEntry | None:
        return self.plans.get((service_id, plan_id))


EMPTY = CatalogIndex(model.Catalog(()), {}, {}, ())


def build(
    classes: Iterable[Resource], plans: Iterable[Resource], entries: Iterable[Resource]
) -> CatalogIndex:
    problems: list[str] = []
    plans_by_class = _plans_by_class(plans, problems)
    offerings: dict[str, Offering] = {}
    plan_index: dict[tuple[str, str], PlanEntry] = {}
    names: set[str] = set()
    plan_ids: set[str] = set()

    def add(offering: Offering, entries_: list[PlanEntry]) -> None:
        service = offering.service
        if service.id in offerings:
            problems.append(f"{offering.source}: service id {service.id!r} is taken; left out")
            return
        if service.name in names:
            problems.append(f"{offering.source}: service name {service.name!r} is taken; left out")
            return
        kept: list[PlanEntry] = []
        plan_names: set[str] = set()
        for entry in entries_:
            if entry.plan.id in plan_ids:
                problems.append(f"{entry.source}: plan id {entry.plan.id!r} is taken; left out")
            elif entry.plan.name in plan_names:
                problems.append(
                    f"{entry.source}: {service.name} already has a plan named "
                    f"{entry.plan.name!r}; left out"
                )
            else:
                kept.append(entry)
                plan_names.add(entry.plan.name)
        if not kept:
            problems.append(f"{offering.source}: no plan lists it; left out")
            return
        service = dataclasses.replace(service, plans=tuple(e.plan for e in kept))
        offerings[service.id] = dataclasses.replace(offering, service=service)
        names.add(service.name)
        for entry in kept:
            plan_ids.add(entry.plan.id)
            plan_index[(service.id, entry.plan.id)] = entry

    for resource in _sorted(classes):
        meta, spec = resource.metadata, resource.spec
        key = f"service-class/{meta.namespace}/{meta.name}"
        listing = plans_by_class.get(key, [])
        service = model.Service(
            id=spec.entry.id,
            name=spec.entry.name,
            description=spec.entry.description,
            plans=(),
            tags=("istio",),
        )
        offering = Offering(
            service, meta.namespace, spec.deployment.instance, f"ServiceClass {_where(resource)}"
        )
        add(offering, [_plan_entry(p, service.id, len(classes_of)) for p, classes_of in listing])

    for resource in _sorted(entries):
        meta = resource.metadata
        if meta.annotations.get(CATALOG_ANNOTATION, "").lower() != "true":
            continue
        if not resource.spec.workload_selector.labels:
            problems.append(
                f"ServiceEntry {_where(resource)}: annotated {CATALOG_ANNOTATION} but it has no "
                "workloadSelector, so no sidecar could enforce who may call it; left out"
            )
            continue
        add(*_entry_offering(resource))

    services = tuple(o.service for o in offerings.values())
    return CatalogIndex(model.Catalog(services), offerings, plan_index, tuple(problems))


def _plans_by_class(
    plans: Iterable[Resource], problems: list[str]
) -> dict[str, list[tuple[Resource, list[str]]]]:
    by_class: dict[str, list[tuple[Resource, list[str]]]] = {}
    for resource in _sorted(plans):
        keys = list(dict.fromkeys(resource.spec.services))
        for key in keys:
            if not _CLASS_KEY.match(key):
                problems.append(f"ServicePlan {_where(resource)}: {key!r} is not a class key")
                continue
            by_class.setdefault(key, []).append((resource, keys))
    return by_class


def _plan_entry(resource: Resource, service_id: str, shared_by: int) -> PlanEntry:
    spec = resource.spec
    plan_id = spec.plan.id if shared_by == 1 else _derived(spec.plan.id, service_id)
    return PlanEntry(
        _plan(plan_id, spec.plan.name, spec.plan.description, spec.provisioning),
        spec.provisioning,
        f"ServicePlan {_where(resource)}",
    )


def _plan(
    plan_id: str, name: str, description: str, provisioning: service_plan_pb2.Provisioning
) -> model.Plan:
    metadata: dict[str, object] = {}
    polling = None
    if provisioning.asynchronous:
        metadata["asynchronous"] = True
        polling = ready_timeout(provisioning) + 60
    return model.Plan(
        id=plan_id,
        name=name,
        description=description,
        metadata=metadata,
        maximum_polling_duration=polling,
    )


def ready_timeout(provisioning: service_plan_pb2.Provisioning) -> int:
    """Seconds an asynchronous provision waits for a workload (5 minutes unless set)."""
    if provisioning.HasField("ready_timeout"):
        return max(1, round(provisioning.ready_timeout.ToTimedelta().total_seconds()))
    return 300


def _entry_offering(resource: Resource) -> tuple[Offering, list[PlanEntry]]:
    meta, spec = resource.metadata, resource.spec
    host = spec.hosts[0] if spec.hosts else meta.name
    service_id = _derived("serviceentry", meta.namespace, meta.name)
    service = model.Service(
        id=service_id,
        name=f"{meta.name}.{meta.namespace}",
        description=meta.annotations.get(DESCRIPTION_ANNOTATION) or f"The mesh service {host}",
        plans=(),
        tags=("istio",),
    )
    plan = _plan(
        _derived("serviceentry", meta.namespace, meta.name, "default"),
        "default",
        f"Mutual-TLS access to {host} with a SPIFFE identity per binding",
        DEFAULT_PROVISIONING,
    )
    source = f"ServiceEntry {_where(resource)}"
    return Offering(service, meta.namespace, meta.name, source), [
        PlanEntry(plan, DEFAULT_PROVISIONING, source)
    ]


def _derived(*parts: str) -> str:
    return str(uuid.uuid5(_IDS, "/".join(parts)))


def _sorted(resources: Iterable[Resource]) -> list[Resource]:
    return sorted(resources, key=lambda r: (r.metadata.namespace, r.metadata.name))


def _where(resource: Resource) -> str:
    return f"{resource.metadata.namespace}/{resource.metadata.name}"
