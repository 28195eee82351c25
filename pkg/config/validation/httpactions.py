"""What an HTTP route does besides forwarding: CORS, faults, retries, redirects, direct
responses and rewrites (after Istio's validateCORSPolicy, validateHTTPRetry, ...)."""

from __future__ import annotations

import http

from pkg.config.validation import headers
from pkg.config.validation.common import (
    check_duration,
    check_percent,
    check_percentage,
    check_port,
    check_regex,
)
from pkg.config.validation.result import FieldPath, ValidationResult

RETRY_ON = frozenset(
    {
        "5xx",
        "gateway-error",
        "reset",
        "reset-before-request",
        "connect-failure",
        "retriable-4xx",
        "refused-stream",
        "retriable-status-codes",
        "retriable-headers",
        "envoy-ratelimited",
        "http3-post-connect-failure",
        "cancelled",
        "deadline-exceeded",
        "internal",
        "resource-exhausted",
        "unavailable",
    }
)
CORS_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*"}
)
GRPC_STATUSES = frozenset(
    {
        "OK",
        "CANCELLED",
        "UNKNOWN",
        "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED",
        "NOT_FOUND",
        "ALREADY_EXISTS",
        "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED",
        "FAILED_PRECONDITION",
        "ABORTED",
        "OUT_OF_RANGE",
        "UNIMPLEMENTED",
        "INTERNAL",
        "UNAVAILABLE",
        "DATA_LOSS",
        "UNAUTHENTICATED",
    }
)
ENVOY_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_HTTP_STATUSES = frozenset(s.value for s in http.HTTPStatus)
_KB, _MB = 1024, 1024 * 1024


def check_cors(policy, path: FieldPath, out: ValidationResult) -> None:
    for index, origin in enumerate(policy.allow_origins):
        kind = origin.WhichOneof("match_type")
        if not (kind and getattr(origin, kind)):
            out.error(
                path / "allowOrigins" / index, "'' is not a valid match type for CORS allow origins"
            )
        elif kind == "regex":
            check_regex(origin.regex, path / "allowOrigins" / index / "regex", out)
    for index, method in enumerate(policy.allow_methods):
        if method not in CORS_METHODS:
            out.error(path / "allowMethods" / index, f'"{method}" is not a supported HTTP method')
    for field, json_name in (
        ("allow_headers", "allowHeaders"),
        ("expose_headers", "exposeHeaders"),
    ):
        for index, name in enumerate(getattr(policy, field)):
            problem = headers.check_cors_name(name)
            if problem:
                out.error(path / json_name / index, problem)
    if policy.HasField("max_age"):
        check_duration(policy.max_age, path / "maxAge", out)
        if policy.max_age.nanos > 0:
            out.error(path / "maxAge", "max_age duration is accurate only to seconds precision")


def check_fault(fault, path: FieldPath, out: ValidationResult) -> None:
    if not fault.HasField("delay") and not fault.HasField("abort"):
        out.error(path, "HTTP fault injection must have an abort and/or a delay")
    if fault.HasField("abort"):
        abort, abort_path = fault.abort, path / "abort"
        if abort.HasField("percentage"):
            check_percentage(abort.percentage.value, abort_path / "percentage" / "value", out)
        kind = abort.WhichOneof("error_type")
        if kind == "grpc_status" and abort.grpc_status not in GRPC_STATUSES:
            out.error(
                abort_path / "grpcStatus",
                f'gRPC status "{abort.grpc_status}" is not supported. See '
                "https://github.com/grpc/grpc/blob/master/doc/statuscodes.md for a list of "
                "supported codes, for example 'NOT_FOUND'",
            )
        elif kind == "http2_error":
            out.error(abort_path / "http2Error", "HTTP/2 abort fault injection not supported yet")
        elif kind == "http_status":
            check_http_status(abort.http_status, abort_path / "httpStatus", out)
        elif kind is None:
            out.warn(abort_path, "abort configured, but error type not set")
    if fault.HasField("delay"):
        delay, delay_path = fault.delay, path / "delay"
        if delay.HasField("percentage"):
            check_percentage(delay.percentage.value, delay_path / "percentage" / "value", out)
        if delay.percent:
            check_percent(delay.percent, delay_path / "percent", out)
        kind = delay.WhichOneof("http_delay_type")
        if kind == "fixed_delay":
            check_duration(delay.fixed_delay, delay_path / "fixedDelay", out)
        elif kind == "exponential_delay":
            check_duration(delay.exponential_delay, delay_path / "exponentialDelay", out)
            out.error(delay_path / "exponentialDelay", "exponentialDelay not supported yet")
        else:
            # Istio lets this through and its proxies ignore the delay; Envoy's fault filter
            # refuses a delay without a duration, so the whole route table would be NACKed.
            out.error(delay_path, "a delay needs fixedDelay")


def check_http_status(status: int, path: FieldPath, out: ValidationResult) -> None:
    if not 200 <= status <= 600:
        out.error(path, f"HTTP status {status} is not in range 200-599")


def check_mirror_percent(value: float, path: FieldPath, out: ValidationResult) -> None:
    if value > 100:
        out.error(path, f"mirror percentage must have a max value of 100 (it has {value:f})")
    if value < 0:
        out.error(path, f"mirror percentage must have a min value of 0 (it has {value:f})")


def check_redirect(redirect, path: FieldPath, out: ValidationResult) -> None:
    if not (
        redirect.uri
        or redirect.authority
        or redirect.scheme
        or redirect.WhichOneof("redirect_port")
    ):
        out.error(path, "redirect must specify URI, authority, scheme, or port")
    code = redirect.redirect_code
    if code and not 300 <= code <= 399:
        out.error(path / "redirectCode", f"{code} is not a valid redirect code, must be 3xx")
    elif code and code not in ENVOY_REDIRECT_CODES:
        out.warn(
            path / "redirectCode",
            f"Redirect Code {code} is not yet supported: Envoy redirects with 301, 302, 303, 307 "
            "or 308, and this one answers 301",
        )
    if redirect.scheme and redirect.scheme not in ("http", "https"):
        out.error(path / "scheme", 'invalid redirect scheme, must be "http" or "https"')
    if redirect.WhichOneof("redirect_port") == "port":
        check_port(redirect.port, path / "port", out)


def check_direct_response(response, path: FieldPath, out: ValidationResult) -> None:
    if response.HasField("body"):
        kind = response.body.WhichOneof("specifier")
        size = (
            len(getattr(response.body, kind).encode() if kind == "string" else response.body.bytes)
            if kind
            else 0
        )
        if size > _MB:
            out.error(
                path / "body",
                "large direct_responses may impact control plane performance, must be less than 1MB",
            )
        elif size > 100 * _KB:
            out.warn(path / "body", "large direct_responses may impact control plane performance")
    check_http_status(response.status, path / "status", out)


def check_retries(retries, path: FieldPath, out: ValidationResult) -> None:
    if retries.attempts < 0:
        out.error(path / "attempts", "attempts cannot be negative")
    if retries.attempts == 0 and (
        retries.HasField("per_try_timeout")
        or retries.retry_on
        or retries.HasField("retry_remote_localities")
    ):
        out.error(path, "http retry policy configured when attempts are set to 0 (disabled)")
    if retries.HasField("per_try_timeout"):
        check_duration(retries.per_try_timeout, path / "perTryTimeout", out)
    if retries.retry_on:
        for policy in retries.retry_on.split(","):
            code = int(policy) if policy.isdecimal() and len(policy) <= 3 else None
            if code not in _HTTP_STATUSES and policy not in RETRY_ON:
                out.error(path / "retryOn", f'"{policy}" is not a valid retryOn policy')
    if retries.HasField("backoff"):
        check_duration(retries.backoff, path / "backoff", out)


def check_rewrite(rewrite, path: FieldPath, out: ValidationResult) -> None:
    regex = rewrite.HasField("uri_regex_rewrite")
    if rewrite.uri and regex:
        out.error(path, "rewrite may only contain one of URI or UriRegexRewrite")
        return
    if not (rewrite.uri or regex or rewrite.authority):
        out.error(
            path,
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority. "
            "Only one of URI or UriRegexRewrite may be specified",
        )
        return
    if regex:
        regex_path = path / "uriRegexRewrite"
        if not (rewrite.uri_regex_rewrite.match and rewrite.uri_regex_rewrite.rewrite):
            out.error(
                regex_path,
                "UriRegexRewrite requires both Rewrite and Match fields to be specified",
            )
        else:
            check_regex(rewrite.uri_regex_rewrite.match, regex_path / "match", out)
