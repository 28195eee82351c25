"""Semantic checks of security.istio.io resources."""

from __future__ import annotations

from urllib.parse import urlparse

from pkg.config.validation.common import check_labels, check_port
from pkg.config.validation.result import FieldPath, ValidationResult

HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}


def _check_selector(spec, path: FieldPath, out: ValidationResult) -> None:
    if spec.HasField("selector"):
        check_labels(spec.selector.match_labels, path / "selector" / "matchLabels", out)


def validate_peer_authentication(spec, path: FieldPath, out: ValidationResult) -> None:
    _check_selector(spec, path, out)
    if spec.port_level_mtls and not (spec.HasField("selector") and spec.selector.match_labels):
        out.error(path / "portLevelMtls", "port-level mTLS needs a workload selector")
    for port in spec.port_level_mtls:
        check_port(port, path / "portLevelMtls" / str(port), out)


def validate_authorization_policy(spec, path: FieldPath, out: ValidationResult) -> None:
    _check_selector(spec, path, out)
    action = spec.DESCRIPTOR.fields_by_name["action"].enum_type.values_by_number[spec.action].name
    if action == "CUSTOM" and not spec.HasField("provider"):
        out.error(path / "provider", "a CUSTOM policy needs a provider")
    if action != "CUSTOM" and spec.HasField("provider"):
        out.error(path / "provider", "only a CUSTOM policy may name a provider")
    for index, rule in enumerate(spec.rules):
        rule_path = path / "rules" / index
        for f, source in enumerate(getattr(rule, "from")):
            if not source.HasField("source"):
                out.error(rule_path / "from" / f / "source", "a from entry needs a source")
        for t, target in enumerate(rule.to):
            op_path = rule_path / "to" / t / "operation"
            if not target.HasField("operation"):
                out.error(op_path, "a to entry needs an operation")
                continue
            for m, method in enumerate(target.operation.methods):
                if method != "*" and method.upper() not in HTTP_METHODS:
                    out.error(op_path / "methods" / m, f"{method!r} is not an HTTP method")
            for p, port in enumerate(target.operation.ports):
                if not port.isdigit() or not 1 <= int(port) <= 65535:
                    out.error(op_path / "ports" / p, f"{port!r} is not a port number")
            for p, pattern in enumerate(target.operation.paths):
                if not (pattern == "*" or pattern.startswith("/") or pattern.startswith("*")):
                    out.error(op_path / "paths" / p, f"{pattern!r} must start with '/' or '*'")
        for c, condition in enumerate(rule.when):
            cond_path = rule_path / "when" / c
            if not condition.key:
                out.error(cond_path / "key", "a condition needs a key")
            if not condition.values and not condition.not_values:
                out.error(cond_path, "a condition needs values or notValues")


def validate_request_authentication(spec, path: FieldPath, out: ValidationResult) -> None:
    _check_selector(spec, path, out)
    for index, rule in enumerate(spec.jwt_rules):
        rule_path = path / "jwtRules" / index
        if not rule.issuer:
            out.error(rule_path / "issuer", "a JWT rule needs an issuer")
        if rule.jwks_uri:
            url = urlparse(rule.jwks_uri)
            if url.scheme not in ("http", "https") or not url.netloc:
                out.error(rule_path / "jwksUri", f"{rule.jwks_uri!r} is not an http(s) URL")
        if rule.jwks_uri and rule.jwks:
            out.error(rule_path / "jwks", "set either jwks or jwksUri, not both")
