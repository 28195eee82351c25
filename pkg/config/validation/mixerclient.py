"""Semantic checks of the Mixer client kinds: QuotaSpec and QuotaSpecBinding (config.istio.io).

As Istio 1.x's validation (ValidateQuotaSpec, ValidateQuotaSpecBinding): a spec needs rules,
each with named quotas of positive charge; a binding needs services and specs, by valid
names. Regex clauses are refused: the proxies' filter matches exact and prefix only.
"""

from __future__ import annotations

from pkg.config.validation.common import check_host, check_labels, check_regex
from pkg.config.validation.names import is_dns1123_label
from pkg.config.validation.result import FieldPath, ValidationResult


def validate_quota_spec(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.rules:
        out.error(path / "rules", "at least one rule must be specified")
    for r, rule in enumerate(spec.rules):
        rule_path = path / "rules" / r
        for m, match in enumerate(rule.match):
            match_path = rule_path / "match" / m / "clause"
            if not match.clause:
                out.error(match_path, "a match needs at least one clause")
            for name, clause in sorted(match.clause.items()):
                clause_path = match_path / name
                if not name:
                    out.error(match_path, "a clause must name an attribute")
                kind = clause.WhichOneof("match_type")
                if kind is None:
                    out.error(clause_path, "one of exact, prefix or regex must be set")
                elif not getattr(clause, kind):
                    out.error(clause_path / kind, f"the {kind} match of {name!r} must not be empty")
                elif kind == "regex":
                    check_regex(clause.regex, clause_path / "regex", out)
                    out.error(
                        clause_path / "regex",
                        "regex matches are not supported by this mesh's proxies; use exact or prefix",
                    )
        if not rule.quotas:
            out.error(rule_path / "quotas", "at least one quota must be specified")
        for q, quota in enumerate(rule.quotas):
            quota_path = rule_path / "quotas" / q
            if not quota.quota:
                out.error(quota_path / "quota", "the quota name must be specified")
            if quota.charge <= 0:
                out.error(quota_path / "charge", f"the charge must be positive, got {quota.charge}")


def validate_quota_spec_binding(spec, path: FieldPath, out: ValidationResult) -> None:
    if not spec.services:
        out.error(path / "services", "at least one service must be specified")
    for s, service in enumerate(spec.services):
        _check_service(service, path / "services" / s, out)
    if not spec.quota_specs:
        out.error(path / "quotaSpecs", "at least one quota spec must be specified")
    for q, reference in enumerate(spec.quota_specs):
        ref_path = path / "quotaSpecs" / q
        if not reference.name:
            out.error(ref_path / "name", "the quota spec's name is required")
        if reference.namespace and not is_dns1123_label(reference.namespace):
            out.error(ref_path / "namespace", f"{reference.namespace!r} is not a valid namespace")


def _check_service(service, path: FieldPath, out: ValidationResult) -> None:
    if service.name and service.service:
        out.error(path, "name and service cannot be specified together")
    if service.domain and service.service:
        out.error(path, "domain and service cannot be specified together")
    if not service.name and not service.service:
        out.error(path, "a service needs a name or a service (FQDN)")
    if service.name and service.name != "*" and not is_dns1123_label(service.name):
        out.error(path / "name", f"{service.name!r} is not a valid service name")
    if service.namespace and not is_dns1123_label(service.namespace):
        out.error(path / "namespace", f"{service.namespace!r} is not a valid namespace")
    if service.domain:
        check_host(service.domain, path / "domain", out, wildcard=False)
    if service.service:
        check_host(service.service, path / "service", out)
    check_labels(service.labels, path / "labels", out)
