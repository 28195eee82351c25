"""AuthorizationPolicy, after Istio's ValidateAuthorizationPolicy and pkg/config/security.

What Istio accepts, we accept: any non-empty method token (Envoy compares methods as strings),
any path except malformed `{*}`/`{**}` templates. What it refuses, we refuse: empty values,
empty sources and operations, DENY without rules, conditions on unknown attributes.
"""

from __future__ import annotations

import ipaddress
import re

from pkg.config.validation.result import FieldPath, ValidationResult
from pkg.config.validation.targets import check_policy_targets

_SOURCE_FIELDS = (
    ("principals", "principals"),
    ("request_principals", "requestPrincipals"),
    ("namespaces", "namespaces"),
    ("ip_blocks", "ipBlocks"),
    ("remote_ip_blocks", "remoteIpBlocks"),
    ("not_principals", "notPrincipals"),
    ("not_request_principals", "notRequestPrincipals"),
    ("not_namespaces", "notNamespaces"),
    ("not_ip_blocks", "notIpBlocks"),
    ("not_remote_ip_blocks", "notRemoteIpBlocks"),
)
# Trust domains are checked apart: wildcards only at an end, no '/'; and they do not make a
# DENY rule's source one plain TCP can tell (Istio counts them out).
_TRUST_DOMAIN_FIELDS = (("trust_domains", "trustDomains"), ("not_trust_domains", "notTrustDomains"))
_OPERATION_FIELDS = (
    ("ports", "ports"),
    ("methods", "methods"),
    ("paths", "paths"),
    ("hosts", "hosts"),
    ("not_ports", "notPorts"),
    ("not_methods", "notMethods"),
    ("not_paths", "notPaths"),
    ("not_hosts", "notHosts"),
)
# Conditions on these carry plain values; the ones after them are checked further.
_PLAIN_KEYS = frozenset(
    {
        "source.namespace",
        "source.principal",
        "request.auth.principal",
        "request.auth.audiences",
        "request.auth.presenter",
        "connection.sni",
    }
)
_MAP_KEY_PREFIXES = ("request.headers", "request.auth.claims", "experimental.envoy.filters.")
_IP_KEYS = frozenset({"source.ip", "remote.ip", "destination.ip"})
_PATH_LITERAL = re.compile(r"^[a-zA-Z0-9\-._~%!$&'()+,;:@=]+$")


def validate_authorization_policy(spec, path: FieldPath, out: ValidationResult) -> None:
    check_policy_targets(spec, path, out)
    action = spec.DESCRIPTOR.fields_by_name["action"].enum_type.values_by_number[spec.action].name
    if action == "CUSTOM":
        if not spec.rules:
            out.error(
                path / "rules",
                "CUSTOM action without `rules` is meaningless as it will never be triggered, "
                "add an empty rule `{}` if you want it be triggered for every request",
            )
        elif not spec.provider.name:
            out.error(path / "provider" / "name", "`provider.name` must not be empty")
        _check_custom_rules(spec, path, out)
    if spec.HasField("provider") and action != "CUSTOM":
        out.error(
            path / "provider", f"`provider` must not be with non CUSTOM action, found {action}"
        )
    if action == "DENY" and not spec.rules:
        out.error(
            path / "rules",
            "DENY action without `rules` is meaningless as it will never be triggered, "
            "add an empty rule `{}` if you want it be triggered for every request",
        )
    for index, rule in enumerate(spec.rules):
        _check_rule(rule, index, path / "rules" / index, out, deny=action == "DENY")


def _check_custom_rules(spec, path: FieldPath, out: ValidationResult) -> None:
    for index, rule in enumerate(spec.rules):
        rule_path = path / "rules" / index
        for f, entry in enumerate(getattr(rule, "from")):
            source = entry.source
            for field, json_name in (
                ("namespaces", "Namespaces"),
                ("not_namespaces", "NotNamespaces"),
                ("service_accounts", "ServiceAccounts"),
                ("not_service_accounts", "NotServiceAccounts"),
                ("trust_domains", "TrustDomains"),
                ("not_trust_domains", "NotTrustDomains"),
                ("principals", "Principals"),
                ("not_principals", "NotPrincipals"),
                ("request_principals", "RequestPrincipals"),
                ("not_request_principals", "NotRequestPrincipals"),
            ):
                if getattr(source, field):
                    out.error(
                        rule_path / "from" / f / "source",
                        f"From.{json_name} is currently not supported with CUSTOM action",
                    )
        for w, condition in enumerate(rule.when):
            key = condition.key
            if key in (
                "source.namespace",
                "source.serviceAccount",
                "source.trustDomain",
                "source.principal",
            ) or (key.startswith("request.auth.")):
                out.error(
                    rule_path / "when" / w, f"{key} is currently not supported with CUSTOM action"
                )


def _check_rule(rule, index: int, path: FieldPath, out: ValidationResult, *, deny: bool) -> None:
    tcp_from = tcp_to = has_from = has_to = False
    for f, entry in enumerate(getattr(rule, "from")):
        source_path = path / "from" / f / "source"
        if not entry.HasField("source"):
            out.error(source_path, f"`from.source` must not be nil, found at rule {index}")
            continue
        has_from = True
        source = entry.source
        named = (
            source.principals or source.not_principals or source.namespaces or source.not_namespaces
        )
        if named and (source.service_accounts or source.not_service_accounts):
            out.error(
                source_path,
                f"cannot set serviceAccounts with namespaces or principals, found at rule {index}",
            )
        lists = [getattr(source, field) for field, _ in (*_SOURCE_FIELDS, *_TRUST_DOMAIN_FIELDS)]
        if not any(lists) and not source.service_accounts and not source.not_service_accounts:
            out.error(source_path, f"`from.source` must not be empty, found at rule {index}")
        for field, json_name in _SOURCE_FIELDS:
            _check_not_empty(getattr(source, field), source_path / json_name, json_name, out)
            if "ip_blocks" in field:
                _check_ips(getattr(source, field), source_path / json_name, out)
        for field, json_name in (
            ("service_accounts", "ServiceAccounts"),
            ("not_service_accounts", "NotServiceAccounts"),
        ):
            problem = _service_account_problem(json_name, list(getattr(source, field)))
            if problem:
                out.error(source_path / (json_name[0].lower() + json_name[1:]), problem)
        for field, json_name in _TRUST_DOMAIN_FIELDS:
            problem = _trust_domain_problem(
                json_name[0].upper() + json_name[1:], getattr(source, field)
            )
            if problem:
                out.error(source_path / json_name, problem)
        # Every source attribute but requestPrincipals is known on plain TCP connections too.
        tcp_from = tcp_from or any(
            getattr(source, field)
            for field, _ in (
                *_SOURCE_FIELDS,
                ("service_accounts", ""),
                ("not_service_accounts", ""),
            )
            if "request_principals" not in field
        )
    for t, target in enumerate(rule.to):
        operation_path = path / "to" / t / "operation"
        if not target.HasField("operation"):
            out.error(operation_path, f"`to.operation` must not be nil, found at rule {index}")
            continue
        has_to = True
        operation = target.operation
        if not any(getattr(operation, field) for field, _ in _OPERATION_FIELDS):
            out.error(operation_path, f"`to.operation` must not be empty, found at rule {index}")
        for field, json_name in _OPERATION_FIELDS:
            values = getattr(operation, field)
            _check_not_empty(values, operation_path / json_name, json_name, out)
            if field in ("ports", "not_ports"):
                _check_ports(values, operation_path / json_name, out)
            if field in ("paths", "not_paths"):
                _check_path_templates(values, operation_path / json_name, json_name, out)
        tcp_to = tcp_to or bool(operation.ports or operation.not_ports)
    for w, condition in enumerate(rule.when):
        _check_condition(condition, path / "when" / w, out)
    if deny and ((has_from and not has_to and not tcp_from) or (has_to and not tcp_to)):
        out.warn(
            path,
            "configured AuthorizationPolicy will deny all traffic to TCP ports under its scope "
            "due to the use of only HTTP attributes in a DENY rule; it is recommended to "
            "explicitly specify the port",
        )


def _check_not_empty(values, path: FieldPath, what: str, out: ValidationResult) -> None:
    for index, value in enumerate(values):
        if not value:
            name = what[0].upper() + what[1:]
            out.error(path / index, f"empty value not allowed, found in {name}")
            return


def _check_ips(values, path: FieldPath, out: ValidationResult) -> None:
    for index, value in enumerate(values):
        try:
            if "/" in value:
                ipaddress.ip_network(value, strict=False)
            else:
                ipaddress.ip_address(value)
        except ValueError:
            kind = "CIDR range" if "/" in value else "IP address"
            out.error(path / index, f"bad {kind} ({value})")


def _check_ports(values, path: FieldPath, out: ValidationResult) -> None:
    for index, value in enumerate(values):
        if not (value.isdecimal() and value.isascii() and int(value) <= 65535):
            out.error(path / index, f"bad port ({value})")


def _check_path_templates(values, path: FieldPath, what: str, out: ValidationResult) -> None:
    """Only `{*}` (one segment) and `{**}` (the rest, last) are templates; other braces are not."""
    for index, value in enumerate(values):
        templated = "{*}" in value or "{**}" in value
        rest_seen = False
        for segment in value.strip("/").split("/"):
            if segment == "{*}" and not rest_seen:
                continue
            if segment == "{**}" and not rest_seen:
                rest_seen = True
                continue
            shown = value.strip("/")
            if segment in ("{*}", "{**}"):
                out.error(
                    path / index,
                    f"invalid or unsupported path {shown}, found in {what[0].upper() + what[1:]}. "
                    "{**} is not the last operator",
                )
                break
            if "{" in segment or "}" in segment:
                out.error(
                    path / index,
                    f"invalid or unsupported path {shown}, found in {what[0].upper() + what[1:]}. "
                    "Contains '{' or '}' beyond a supported path template",
                )
                break
            if templated and not _PATH_LITERAL.match(segment):
                out.error(
                    path / index,
                    f"invalid or unsupported path {shown}, found in {what[0].upper() + what[1:]}. "
                    f"Contains segment {segment} with invalid string literal",
                )
                break


def _wildcard_problem(key: str, values) -> str | None:
    """Istio's CheckWildcardValues: exact, `prefix*`, `*suffix` or `*`; nothing in between."""
    for value in values:
        if not value:
            return f"empty value not allowed, found in {key}"
    for value in values:
        count = value.count("*")
        if count > 1:
            return f'at most one wildcard is allowed, found in {key}: "{value}"'
        if count == 1 and value != "*" and not value.startswith("*") and not value.endswith("*"):
            return f'wildcard is only allowed at the start or end, found in {key}: "{value}"'
    return None


def _trust_domain_problem(key: str, values) -> str | None:
    """Istio's CheckTrustDomainValues: wildcard values that hold no '/'."""
    problem = _wildcard_problem(key, values)
    if problem:
        return problem
    for value in values:
        if "/" in value:
            return f"trust domain must not contain '/', found in {key}: \"{value}\""
    return None


def _service_account_problem(key: str, values: list[str]) -> str | None:
    if len(values) > 16:
        return "may not have more than 16 values"
    for value in values:
        if not value:
            return f"empty value not allowed, found in {key}"
        if "*" in value:
            return f"wildcard not allowed, found in {key}"
        if value.count("/") > 1:
            return (
                f"expected format 'serviceAccount' or 'namespace/serviceAccount', found "
                f'"{value}" in {key}'
            )
        if len(value) > 320:
            return f'value cannot exceed 320 characters, found "{value[:40]}..." in {key}'
        namespace, slash, account = value.partition("/")
        if slash and not namespace:
            return (
                "expected format 'serviceAccount' or 'namespace/serviceAccount', found empty "
                f'namespace "{value}" in {key}'
            )
        if slash and not account:
            return (
                "expected format 'serviceAccount' or 'namespace/serviceAccount', found empty "
                f'serviceAccount "{value}" in {key}'
            )
    return None


def _check_condition(condition, path: FieldPath, out: ValidationResult) -> None:
    key = condition.key
    if not key:
        out.error(path / "key", "`key` must not be empty")
        return
    if not condition.values and not condition.not_values:
        out.error(path, f"at least one of `values` or `notValues` must be set for key {key}")
        return
    for field, what in (("values", "value"), ("not_values", "notValue")):
        problem = _attribute_problem(key, list(getattr(condition, field)))
        if problem:
            out.error(path / field, f"invalid `{what}` for `key` {key}: {problem}")


def _attribute_problem(key: str, values: list[str]) -> str | None:
    """Istio's security.ValidateAttribute: the attributes a condition may test, and how."""
    if any(not v for v in values):
        return f"empty value not allowed, found in {key}"
    if key.startswith(_MAP_KEY_PREFIXES):
        opening = key.find("[")
        if key.endswith("]") and 0 < opening < len(key) - 2:
            return None
        return f"bad key ({key}): should have format a[b]"
    if key in _IP_KEYS:
        for value in values:
            try:
                if "/" in value:
                    ipaddress.ip_network(value, strict=False)
                else:
                    ipaddress.ip_address(value)
            except ValueError:
                return f"bad IP address ({value})"
        return None
    if key == "source.serviceAccount":
        return _service_account_problem(key, values)
    if key == "source.trustDomain":
        return _wildcard_problem(key, values)
    if key == "destination.port":
        bad = [v for v in values if not (v.isdecimal() and v.isascii() and int(v) <= 65535)]
        return f"bad port ({bad[0]})" if bad else None
    if key in _PLAIN_KEYS:
        return None
    if key == "destination.namespace":
        return f"attribute {key} is replaced by the metadata.namespace"
    if key.startswith("destination.labels"):
        return f"attribute {key} is replaced by the workload selector"
    if key in ("destination.name", "destination.user"):
        return f"deprecated attribute {key}: only supported in v1alpha1"
    return f"unknown attribute: {key}"
