"""VirtualService HTTP routes to Envoy routes (Istio's `route/route.go`).

Pure functions from one VirtualService HTTPRoute to Envoy `Route` dicts in the v3 JSON
form; `routes.py` assembles them into RouteConfigurations and parses them once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from api.networking.v1alpha3 import destination_rule_pb2 as dr_pb2
from api.networking.v1alpha3 import virtual_service_pb2 as vs_pb2
from pilot.model.push_context import PushContext
from pilot.networking import names, security
from pilot.networking.durations import duration
from pkg.config.validation.headers import jwt_claims

FAULT_FILTER = "envoy.filters.http.fault"
_FAULT_TYPE = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"
_PREVIOUS_HOSTS = (
    "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
)

# Istio 1.3+ retries every route twice on connection-level failures unless told otherwise.
_DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
_MAX_TOTAL_WEIGHT = 2**32 - 1  # Envoy refuses weighted clusters whose weights sum past this
_REDIRECT_CODES = {
    301: "MOVED_PERMANENTLY",
    302: "FOUND",
    303: "SEE_OTHER",
    307: "TEMPORARY_REDIRECT",
    308: "PERMANENT_REDIRECT",
}

# Decides whether a match clause applies to the proxy being configured (sourceLabels,
# gateways, port): those are resolved at generation time, never sent to Envoy.
MatchFilter = Callable[[vs_pb2.HTTPMatchRequest], bool]


def translate(
    route: vs_pb2.HTTPRoute,
    *,
    namespace: str,
    push: PushContext,
    applies: MatchFilter,
    index: int,
) -> list[dict[str, Any]]:
    """One Envoy route per match clause that applies here (all share the action)."""
    action = _action(route, namespace, push)
    matches = [m for m in route.match if applies(m)] if route.match else [None]
    if route.match and not matches:
        return []
    out = []
    for match in matches:
        envoy_route: dict[str, Any] = {
            "name": route.name or f"route-{index}",
            "match": _match(match),
            **action,
        }
        out.append(envoy_route)
    return out


def default_route(cluster: str, push: PushContext | None = None) -> dict[str, Any]:
    """The route a service gets when no VirtualService speaks for it (with the hash key of
    its DestinationRule's consistent hash, when it has one)."""
    action: dict[str, Any] = {
        "cluster": cluster,
        "timeout": "0s",
        "retry_policy": _retry_policy(None),
    }
    parsed = names.parse_cluster(cluster)
    if push is not None and parsed is not None:
        _, port, subset, host = parsed
        found = hash_policy(push, host, port, subset)
        if found is not None:
            action["hash_policy"] = [found]
    return {"name": "default", "match": {"prefix": "/"}, "route": action}


def hash_policy(push: PushContext, host: str, port: int, subset: str) -> dict[str, Any] | None:
    """Envoy's per-request hash key for a destination whose DestinationRule balances by
    consistent hash (Istio's `HashForHTTPDestination`): the subset's port-level setting, else
    the subset's, else the rule's port-level one, else the rule's. Envoy's ring or Maglev
    cluster has nothing to hash without it, and would spread one caller's requests at random.
    """
    rule = push.destination_rule(host)
    if rule is None:
        return None
    spec: dr_pb2.DestinationRule = rule.spec
    candidates = []
    subset_policy = next(
        (s.traffic_policy for s in spec.subsets if subset and s.name == subset), None
    )
    if subset_policy is not None:
        candidates += [_port_hash(subset_policy, port), _hash_of(subset_policy.load_balancer)]
    candidates += [
        _port_hash(spec.traffic_policy, port),
        _hash_of(spec.traffic_policy.load_balancer),
    ]
    hashing = next((c for c in candidates if c is not None), None)
    return _hash_key(hashing) if hashing is not None else None


def _hash_of(
    lb: dr_pb2.LoadBalancerSettings,
) -> dr_pb2.LoadBalancerSettings.ConsistentHashLB | None:
    return lb.consistent_hash if lb.WhichOneof("lb_policy") == "consistent_hash" else None


def _port_hash(
    policy: dr_pb2.TrafficPolicy, port: int
) -> dr_pb2.LoadBalancerSettings.ConsistentHashLB | None:
    for level in policy.port_level_settings:
        if port and level.port.number == port:
            return _hash_of(level.load_balancer)
    return None


def _hash_key(hashing: dr_pb2.LoadBalancerSettings.ConsistentHashLB) -> dict[str, Any] | None:
    key = hashing.WhichOneof("hash_key")
    if key == "http_header_name":
        return {"header": {"header_name": hashing.http_header_name}}
    if key == "http_cookie":
        cookie: dict[str, Any] = {"name": hashing.http_cookie.name}
        if hashing.http_cookie.path:
            cookie["path"] = hashing.http_cookie.path
        if hashing.http_cookie.HasField("ttl"):
            cookie["ttl"] = duration(hashing.http_cookie.ttl)
        if hashing.http_cookie.attributes:
            cookie["attributes"] = [
                {"name": a.name, "value": a.value} for a in hashing.http_cookie.attributes
            ]
        return {"cookie": cookie}
    if key == "use_source_ip":
        return {"connection_properties": {"source_ip": hashing.use_source_ip}}
    if key == "http_query_parameter_name":
        return {"query_parameter": {"name": hashing.http_query_parameter_name}}
    return None


def _match(match: vs_pb2.HTTPMatchRequest | None) -> dict[str, Any]:
    if match is None:
        return {"prefix": "/"}
    out: dict[str, Any] = {}
    uri = match.uri.WhichOneof("match_type")
    if uri == "exact":
        out["path"] = match.uri.exact
    elif uri == "prefix":
        out["prefix"] = match.uri.prefix
    elif uri == "regex":
        out["safe_regex"] = {"regex": match.uri.regex}
    else:
        out["prefix"] = "/"
    if match.ignore_uri_case:
        out["case_sensitive"] = False
    headers = [
        _header(name, value)
        for name, value in sorted(match.headers.items())
        if jwt_claims(name) is None
    ]
    headers += [
        {**_header(name, value), "invert_match": True}
        for name, value in sorted(match.without_headers.items())
        if jwt_claims(name) is None
    ]
    claims = [
        _claim(name, value, invert=False)
        for name, value in sorted(match.headers.items())
        if jwt_claims(name) is not None
    ]
    claims += [
        _claim(name, value, invert=True)
        for name, value in sorted(match.without_headers.items())
        if jwt_claims(name) is not None
    ]
    if claims:
        out["dynamic_metadata"] = claims
    for pseudo, field in (
        (":method", "method"),
        (":authority", "authority"),
        (":scheme", "scheme"),
    ):
        if match.HasField(field):
            headers.append(_header(pseudo, getattr(match, field)))
    if headers:
        out["headers"] = headers
    if match.query_params:
        out["query_parameters"] = [
            {"name": name, "string_match": _string_match(value)}
            if value.WhichOneof("match_type")
            else {"name": name, "present_match": True}
            for name, value in sorted(match.query_params.items())
        ]
    return out


def _header(name: str, value: vs_pb2.StringMatch) -> dict[str, Any]:
    if not value.WhichOneof("match_type"):
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": _string_match(value)}


def _claim(name: str, value: vs_pb2.StringMatch, *, invert: bool) -> dict[str, Any]:
    """`@request.auth.claims.<a>.<b>`: a claim of the token jwt_authn verified (gateways only,
    which choose the route again after that filter). A claim is a string or a list of them."""
    matcher: dict[str, Any]
    if value.WhichOneof("match_type"):
        string = {"string_match": _string_match(value)}
        matcher = {
            "or_match": {
                "value_matchers": [string, {"list_match": {"one_of": string}}],
            }
        }
    else:
        matcher = {"present_match": True}
    path = [security.JWT_PAYLOAD, *(jwt_claims(name) or [])]
    found = {
        "filter": security.JWT_FILTER,
        "path": [{"key": key} for key in path],
        "value": matcher,
    }
    return {**found, "invert": True} if invert else found


def _string_match(value: vs_pb2.StringMatch) -> dict[str, Any]:
    kind = value.WhichOneof("match_type")
    if kind == "regex":
        return {"safe_regex": {"regex": value.regex}}
    return {kind: getattr(value, kind)}


def _action(route: vs_pb2.HTTPRoute, namespace: str, push: PushContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if route.HasField("redirect"):
        out["redirect"] = _redirect(route.redirect)
    elif route.HasField("direct_response"):
        body = route.direct_response.body
        out["direct_response"] = {"status": route.direct_response.status}
        if body.WhichOneof("specifier") == "string":
            out["direct_response"]["body"] = {"inline_string": body.string}
    else:
        out["route"] = _forward(route, namespace, push)
    fault = _fault(route.fault) if route.HasField("fault") else None
    if fault:
        out["typed_per_filter_config"] = {FAULT_FILTER: fault}
    out.update(_header_operations(route.headers))
    return out


def _forward(route: vs_pb2.HTTPRoute, namespace: str, push: PushContext) -> dict[str, Any]:
    destinations = list(route.route)
    clusters = [names.cluster_for(d.destination, namespace, push) for d in destinations]
    out: dict[str, Any] = {}
    if len(clusters) == 1:
        out["cluster"] = clusters[0]
    else:
        weights = envoy_weights([d.weight for d in destinations])
        out["weighted_clusters"] = {
            "clusters": [
                {"name": cluster, "weight": weight, **_header_operations(d.headers)}
                for cluster, d, weight in zip(clusters, destinations, weights, strict=True)
                if weight > 0
            ]
        }
    hashes = [
        found
        for d in destinations
        if (
            found := hash_policy(
                push,
                push.resolve(d.destination.host, namespace),
                d.destination.port.number,
                d.destination.subset,
            )
        )
        is not None
    ]
    if hashes:
        out["hash_policy"] = hashes
    out["timeout"] = duration(route.timeout) if route.HasField("timeout") else "0s"
    retry = _retry_policy(route.retries if route.HasField("retries") else None)
    if retry is not None:
        out["retry_policy"] = retry
    if route.HasField("rewrite"):
        if route.rewrite.uri:
            out["prefix_rewrite"] = route.rewrite.uri
        if route.rewrite.authority:
            out["host_rewrite_literal"] = route.rewrite.authority
        if route.rewrite.HasField("uri_regex_rewrite"):
            out["regex_rewrite"] = {
                "pattern": {"regex": route.rewrite.uri_regex_rewrite.match},
                "substitution": route.rewrite.uri_regex_rewrite.rewrite,
            }
    mirrors = list(route.mirrors)
    if route.HasField("mirror"):
        mirrors.insert(
            0, vs_pb2.HTTPMirrorPolicy(destination=route.mirror, percentage=route.mirror_percentage)
        )
    if mirrors:
        out["request_mirror_policies"] = [
            {
                "cluster": names.cluster_for(m.destination, namespace, push),
                **(
                    {"runtime_fraction": {"default_value": _fraction(m.percentage.value)}}
                    if m.HasField("percentage")
                    else {}
                ),
            }
            for m in mirrors
        ]
    return out


def envoy_weights(weights: list[int]) -> list[int]:
    """VirtualService weights as Envoy takes them: relative, as Istio's are (4 and 1 split 80/20).

    Envoy 1.40 sums the clusters' weights itself (total_weight is deprecated), so weights go
    as written unless their sum passes Envoy's limit of 2^32-1, when they are scaled down in
    proportion; a weight of 0 sends nothing. All zero cannot pass validation; were it to come,
    the split would be even rather than a route Envoy refuses.
    """
    if not any(w > 0 for w in weights):
        return [1] * len(weights)
    total = sum(w for w in weights if w > 0)
    if total <= _MAX_TOTAL_WEIGHT:
        return [max(w, 0) for w in weights]
    # Scaled down, every destination that had weight keeps at least 1: leave room for those.
    target = _MAX_TOTAL_WEIGHT - len(weights)
    return [max(1, w * target // total) if w > 0 else 0 for w in weights]


def _retry_policy(retry: vs_pb2.HTTPRetry | None) -> dict[str, Any] | None:
    if retry is not None and retry.attempts <= 0:
        return None  # attempts: 0 switches retries off
    policy: dict[str, Any] = {
        "num_retries": retry.attempts if retry is not None else 2,
        "retry_host_predicate": [
            {
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {"@type": _PREVIOUS_HOSTS},
            }
        ],
        "host_selection_retry_max_attempts": "5",
    }
    if retry is None or not retry.retry_on:
        policy["retry_on"] = _DEFAULT_RETRY_ON
        policy["retriable_status_codes"] = [503]
    else:
        conditions = [c.strip() for c in retry.retry_on.split(",") if c.strip()]
        codes = [int(c) for c in conditions if c.isdigit()]
        conditions = [c for c in conditions if not c.isdigit()]
        if codes:
            policy["retriable_status_codes"] = codes
            conditions.append("retriable-status-codes")
        policy["retry_on"] = ",".join(conditions)
    if retry is not None and retry.HasField("per_try_timeout"):
        policy["per_try_timeout"] = duration(retry.per_try_timeout)
    if retry is not None and retry.HasField("backoff"):
        policy["retry_back_off"] = {"base_interval": duration(retry.backoff)}
    return policy


def _fault(fault: vs_pb2.HTTPFaultInjection) -> dict[str, Any] | None:
    out: dict[str, Any] = {"@type": _FAULT_TYPE}
    if fault.HasField("delay"):
        delay = fault.delay
        if delay.WhichOneof("http_delay_type") == "fixed_delay":
            out["delay"] = {
                "fixed_delay": duration(delay.fixed_delay),
                "percentage": _percentage(
                    delay.percentage.value, delay.HasField("percentage"), delay.percent
                ),
            }
    if fault.HasField("abort"):
        abort = fault.abort
        percentage = _percentage(abort.percentage.value, abort.HasField("percentage"), 0)
        kind = abort.WhichOneof("error_type")
        if kind == "http_status":
            out["abort"] = {"http_status": abort.http_status, "percentage": percentage}
        elif kind == "grpc_status":
            out["abort"] = {"grpc_status": _grpc_code(abort.grpc_status), "percentage": percentage}
    return out if len(out) > 1 else None


def _percentage(value: float, has_value: bool, legacy_percent: int) -> dict[str, Any]:
    if has_value:
        return _fraction(value)
    if legacy_percent:
        return {"numerator": legacy_percent, "denominator": "HUNDRED"}
    return {"numerator": 100, "denominator": "HUNDRED"}


def _fraction(percent: float) -> dict[str, Any]:
    # Istio keeps four decimals of a percentage: per-million resolution.
    return {"numerator": round(percent * 10_000), "denominator": "MILLION"}


def _redirect(redirect: vs_pb2.HTTPRedirect) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if redirect.uri:
        out["path_redirect"] = redirect.uri
    if redirect.authority:
        out["host_redirect"] = redirect.authority
    if redirect.scheme:
        out["scheme_redirect"] = redirect.scheme
    if redirect.WhichOneof("redirect_port") == "port":
        out["port_redirect"] = redirect.port
    if redirect.redirect_code:
        # Envoy has no other 3xx codes; validation warns that these answer 301.
        out["response_code"] = _REDIRECT_CODES.get(redirect.redirect_code, "MOVED_PERMANENTLY")
    return out


def _header_operations(headers: vs_pb2.Headers) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for direction, ops in (("request", headers.request), ("response", headers.response)):
        add = [
            {"header": {"key": k, "value": v}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for k, v in sorted(ops.set.items())
        ] + [
            {"header": {"key": k, "value": v}, "append_action": "APPEND_IF_EXISTS_OR_ADD"}
            for k, v in sorted(ops.add.items())
        ]
        if add:
            out[f"{direction}_headers_to_add"] = add
        if ops.remove:
            out[f"{direction}_headers_to_remove"] = list(ops.remove)
    return out


def _grpc_code(status: str) -> int:
    code = grpc.StatusCode.__members__.get(status.upper(), grpc.StatusCode.UNKNOWN)
    return code.value[0]
