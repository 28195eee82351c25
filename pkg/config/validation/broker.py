"""Semantic checks of broker.istio.io resources: the catalog kinds and the broker's records."""

from __future__ import annotations

import re

from pkg.config.validation import serviceentry, virtualservice
from pkg.config.validation.common import check_labels, seconds
from pkg.config.validation.result import FieldPath, ValidationResult

# OSB's "CLI-friendly" names: alphanumerics, periods and hyphens, no spaces.
_CLI_FRIENDLY = re.compile(r"^[A-Za-z0-9.-]+$")
# Istio 0.8's key of a ServiceClass in a plan: <type>/<namespace>/<name>.
_CLASS_KEY = re.compile(r"^service-class/([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([a-z0-9.-]+)$")
_MAX_TTL_SECONDS = 90 * 24 * 3600  # the CA's longest workload certificate


def _check_listing(entry, path: FieldPath, out: ValidationResult, *, what: str) -> None:
    if not entry.name:
        out.error(path / "name", f"a {what} needs a name")
    elif not _CLI_FRIENDLY.match(entry.name):
        out.error(
            path / "name",
            f"{entry.name!r} is not CLI-friendly: use letters, digits, periods and hyphens",
        )
    if not entry.id:
        out.error(path / "id", f"a {what} needs an id (a GUID is recommended)")
    elif not entry.id.strip() or len(entry.id) > 255:
        out.error(path / "id", "an id must be a non-blank string of at most 255 characters")
    if not entry.description:
        out.error(path / "description", f"a {what} needs a description")


def validate_service_class(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.HasField("entry"):
        out.error(path / "entry", "a ServiceClass needs a catalog entry")
    else:
        _check_listing(spec.entry, path / "entry", out, what="catalog entry")
    if not spec.deployment.instance:
        out.error(path / "deployment" / "instance", "name the service (a ServiceEntry or host)")


def validate_service_plan(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.HasField("plan"):
        out.error(path / "plan", "a ServicePlan needs a plan")
    else:
        _check_listing(spec.plan, path / "plan", out, what="plan")
    if not spec.services:
        out.error(path / "services", "a plan must list at least one ServiceClass")
    for index, key in enumerate(spec.services):
        if not _CLASS_KEY.match(key):
            out.error(
                path / "services" / index,
                f"{key!r} is not a ServiceClass key: want service-class/<namespace>/<name>",
            )
    provisioning = spec.provisioning
    prov_path = path / "provisioning"
    if provisioning.HasField("service_entry"):
        serviceentry.validate_service_entry(
            provisioning.service_entry, prov_path / "serviceEntry", out
        )
    if provisioning.HasField("virtual_service"):
        virtualservice.validate_virtual_service(
            provisioning.virtual_service, prov_path / "virtualService", out
        )
    if provisioning.HasField("ready_timeout") and seconds(provisioning.ready_timeout) <= 0:
        out.error(prov_path / "readyTimeout", "must be positive")
    if provisioning.HasField("binding_ttl"):
        ttl = seconds(provisioning.binding_ttl)
        if not 60 <= ttl <= _MAX_TTL_SECONDS:
            out.error(prov_path / "bindingTtl", f"must be between 1m and 2160h, got {ttl:g}s")


def _check_operation(operation, path: FieldPath, out: ValidationResult) -> None:
    if operation.state != operation.IN_PROGRESS and not operation.finished:
        out.error(path / "finished", "a finished operation needs its finish time")


def validate_service_instance(spec, path: FieldPath, out: ValidationResult) -> None:
    for field in ("instance_id", "service_id", "plan_id"):
        if not getattr(spec, field):
            out.error(path / _camel(field), "required")
    _check_operation(spec.last_operation, path / "lastOperation", out)
    check_labels(spec.target.workload_labels, path / "target" / "workloadLabels", out)
    for index, owned in enumerate(spec.resources):
        if not (owned.api_version and owned.kind and owned.namespace and owned.name):
            out.error(path / "resources" / index, "needs apiVersion, kind, namespace and name")


def validate_service_binding(spec, path: FieldPath, out: ValidationResult) -> None:
    for field in ("binding_id", "instance_id", "service_id", "plan_id"):
        if not getattr(spec, field):
            out.error(path / _camel(field), "required")
    _check_operation(spec.last_operation, path / "lastOperation", out)
    if spec.credentials.certificate_chain and not spec.spiffe_id:
        out.error(path / "spiffeId", "credentials need the identity they were issued for")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
