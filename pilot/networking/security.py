"""Mutual TLS and authorization: PeerAuthentication, DestinationRule TLS, AuthorizationPolicy.

Certificates never pass through Pilot: Envoy fetches them over SDS from the node agent
(the `sds-grpc` cluster of its bootstrap) as `default` (its own key and chain) and
`ROOTCA` (the trust bundle), Istio's names. Pilot only says where TLS is used and what
each side must present and accept. A proxy whose agent has no SDS (node metadata `SDS`)
gets no TLS at all: it could never obtain a certificate.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from api.security.v1beta1 import authorization_pb2, peer_authentication_pb2
from pilot.model.service import labels_match
from pkg.config.resource import Resource

SDS_CLUSTER = "sds-grpc"
STRICT, PERMISSIVE, DISABLE = "STRICT", "PERMISSIVE", "DISABLE"
_MODES = {
    peer_authentication_pb2.PeerAuthentication.MutualTLS.DISABLE: DISABLE,
    peer_authentication_pb2.PeerAuthentication.MutualTLS.PERMISSIVE: PERMISSIVE,
    peer_authentication_pb2.PeerAuthentication.MutualTLS.STRICT: STRICT,
}
_TLS_TYPE = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3."
RAW_BUFFER = {
    "name": "envoy.transport_sockets.raw_buffer",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer"
    },
}
TLS_MODE_LABEL = "security.istio.io/tlsMode"


def has_sds(metadata: Mapping[str, Any]) -> bool:
    return str(metadata.get("SDS", "")).lower() == "true"


def peer_mode(
    policies: Sequence[Resource],
    namespace: str,
    labels: Mapping[str, str],
    port: int | None,
    root_namespace: str,
) -> str:
    """The effective PeerAuthentication mode for a workload (port), Istio's precedence:
    a policy selecting the workload, else its namespace's, else the mesh's; PERMISSIVE by default.
    UNSET inherits from the next level up."""
    levels = [
        [p for p in policies if p.metadata.namespace == namespace and _selects(p, labels)],
        [
            p
            for p in policies
            if p.metadata.namespace == namespace and not p.spec.selector.match_labels
        ],
        [
            p
            for p in policies
            if p.metadata.namespace == root_namespace and not p.spec.selector.match_labels
        ],
    ]
    for level in levels:
        for policy in level:  # the oldest of a level wins (the caller sorts by age)
            spec: peer_authentication_pb2.PeerAuthentication = policy.spec
            if port is not None and port in spec.port_level_mtls:
                mode = _MODES.get(spec.port_level_mtls[port].mode)
                if mode:
                    return mode
            mode = _MODES.get(spec.mtls.mode)
            if mode:
                return mode
    return PERMISSIVE


def _selects(policy: Resource, labels: Mapping[str, str]) -> bool:
    selector = dict(policy.spec.selector.match_labels)
    return bool(selector) and labels_match(selector, labels)


def sds_secret(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "sds_config": {
            "api_config_source": {
                "api_type": "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": SDS_CLUSTER}}],
                "set_node_on_first_message_only": True,
            },
            "resource_api_version": "V3",
        },
    }


def downstream_tls(trust_domain: str) -> dict[str, Any]:
    """Server side: present our cert, require a client cert from the mesh's trust domain."""
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _TLS_TYPE + "DownstreamTlsContext",
            "require_client_certificate": True,
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [sds_secret("default")],
                "combined_validation_context": {
                    "default_validation_context": {
                        "match_typed_subject_alt_names": [
                            {"san_type": "URI", "matcher": {"prefix": f"spiffe://{trust_domain}/"}}
                        ]
                    },
                    "validation_context_sds_secret_config": sds_secret("ROOTCA"),
                },
                "alpn_protocols": ["istio", "h2", "http/1.1"],
            },
        },
    }


def upstream_tls(sni: str, identities: Iterable[str]) -> dict[str, Any]:
    """Client side: present our cert, accept only a server holding one of `identities`."""
    sans = [{"san_type": "URI", "matcher": {"exact": i}} for i in sorted(set(identities))]
    validation: dict[str, Any] = {"match_typed_subject_alt_names": sans} if sans else {}
    return {
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": _TLS_TYPE + "UpstreamTlsContext",
            "sni": sni,
            "common_tls_context": {
                "tls_certificate_sds_secret_configs": [sds_secret("default")],
                "combined_validation_context": {
                    "default_validation_context": validation,
                    "validation_context_sds_secret_config": sds_secret("ROOTCA"),
                },
                "alpn_protocols": ["istio"],
            },
        },
    }


def sni(port: int, subset: str, hostname: str) -> str:
    return f"outbound_.{port}_.{subset}_.{hostname}"


# Authorization.

RBAC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC"
RBAC_NETWORK_TYPE = "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC"
RBAC_NETWORK = "envoy.filters.network.rbac"
# Istio's stat prefix of the network filter: its counters read `tcp.rbac.allowed` etc.
RBAC_NETWORK_STAT_PREFIX = "tcp."
_ACTIONS = {
    authorization_pb2.AuthorizationPolicy.AUDIT: "LOG",
    authorization_pb2.AuthorizationPolicy.DENY: "DENY",
    authorization_pb2.AuthorizationPolicy.ALLOW: "ALLOW",
}
# Istio's builder order: AUDIT (Envoy's LOG, which never refuses), then DENY, then ALLOW.
_ORDER = ("LOG", "DENY", "ALLOW")
# Istio's explicit policy that never matches, for a policy without rules: under ALLOW it
# allows nothing, under DENY it denies nothing.
_MATCH_NEVER = {"permissions": [{"not_rule": {"any": True}}],
                "principals": [{"not_id": {"any": True}}]}  # fmt: skip


class HttpOnly(Exception):
    """A rule's field that a TCP connection does not carry (methods, paths, hosts, request
    principals, request.* conditions)."""


def applying(
    policies: Sequence[Resource], namespace: str, labels: Mapping[str, str], root_namespace: str
) -> list[Resource]:
    """The policies (AuthorizationPolicy, RequestAuthentication) for a workload: those of its
    namespace that select it or select nothing, and the root namespace's without a selector."""
    return [
        p
        for p in policies
        if (
            p.metadata.namespace == namespace
            and (not p.spec.selector.match_labels or _selects(p, labels))
        )
        or (p.metadata.namespace == root_namespace and not p.spec.selector.match_labels)
    ]


def rbac_filters(
    policies: Sequence[Resource],
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str,
    trust_domain: str,
) -> list[dict[str, Any]]:
    """Envoy HTTP RBAC filters for the policies that apply to a workload: AUDIT, DENY, ALLOW.

    With any ALLOW policy, a request no ALLOW rule matches is denied (Istio's semantics);
    with none, everything not denied is allowed.
    """
    return [
        {"name": "envoy.filters.http.rbac", "typed_config": {"@type": RBAC_TYPE, "rules": rules}}
        for rules in _rbac_rules(
            policies, namespace, labels, root_namespace, trust_domain, tcp=False
        )
    ]


def rbac_network_filters(
    policies: Sequence[Resource],
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str,
    trust_domain: str,
) -> list[dict[str, Any]]:
    """Envoy network RBAC filters (before tcp_proxy) for the same policies on a TCP chain.

    Istio's rule for what a connection cannot show: an ALLOW rule with an HTTP-only field
    is left out (so it allows nothing), while in a DENY or AUDIT rule the HTTP-only fields
    are ignored (so it matches, and denies, more)."""
    return [
        {
            "name": RBAC_NETWORK,
            "typed_config": {
                "@type": RBAC_NETWORK_TYPE,
                "stat_prefix": RBAC_NETWORK_STAT_PREFIX,
                "rules": rules,
            },
        }
        for rules in _rbac_rules(
            policies, namespace, labels, root_namespace, trust_domain, tcp=True
        )
    ]


def _rbac_rules(
    policies: Sequence[Resource],
    namespace: str,
    labels: Mapping[str, str],
    root_namespace: str,
    trust_domain: str,
    *,
    tcp: bool,
) -> list[dict[str, Any]]:
    """One Envoy `RBAC` rules message per action present, in Istio's order."""
    applying_ = applying(policies, namespace, labels, root_namespace)
    found = []
    for action in _ORDER:
        chosen = [p for p in applying_ if _ACTIONS.get(p.spec.action) == action]
        if not chosen:
            continue
        envoy_policies: dict[str, Any] = {}
        for p in chosen:
            prefix = f"ns[{p.metadata.namespace}]-policy[{p.metadata.name}]-rule"
            if not p.spec.rules:
                envoy_policies[f"{prefix}[0]"] = _MATCH_NEVER
            for i, rule in enumerate(p.spec.rules):
                try:
                    envoy_policies[f"{prefix}[{i}]"] = _rule(
                        rule, trust_domain, p.metadata.namespace, tcp=tcp, strict=action == "ALLOW"
                    )
                except HttpOnly:
                    continue  # an ALLOW rule a connection can never satisfy: Istio skips it
        found.append({"action": action, "policies": envoy_policies})
    return found


def _rule(
    rule: authorization_pb2.Rule,
    trust_domain: str,
    namespace: str,
    *,
    tcp: bool = False,
    strict: bool = True,
) -> dict[str, Any]:
    """One Envoy policy per rule, shaped as Istio's authz builder shapes it: a principal per
    `from` entry and a permission per `to` entry (Envoy ORs each list), each one the AND of
    its own fields and of the rule's `when` conditions on that side. A principal is built
    from principal matchers only (`and_ids`, `or_ids`, `not_id`): Envoy refuses `or_rules` in
    a principal.

    On TCP (`tcp`) an HTTP-only field raises HttpOnly when `strict` (ALLOW), else is left out."""
    http_only = _HttpOnlyCheck(tcp=tcp, strict=strict)
    conditions = [
        _condition(c, trust_domain, namespace)
        for c in rule.when
        if http_only.keep(c.key if c.key.startswith("request.") else None)
    ]
    source_conditions = [c for c, is_source in conditions if is_source]
    request_conditions = [c for c, is_source in conditions if not is_source]
    # A source's fields and the conditions in one flat AND, as Istio's builder merges them.
    sources = [_source(f.source, trust_domain, namespace, http_only) for f in getattr(rule, "from")]
    operations = [_operation(t.operation, http_only) for t in rule.to]
    principals = [_and_ids([*s, *source_conditions]) for s in sources or [[]]]
    permissions = [_and_rules([o, *request_conditions]) for o in operations or [{"any": True}]]
    return {"permissions": permissions, "principals": principals}


@dataclasses.dataclass(frozen=True)
class _HttpOnlyCheck:
    tcp: bool
    strict: bool

    def keep(self, http_only_field: str | None) -> bool:
        """Whether to build a field (None: not HTTP-only); raises HttpOnly for an ALLOW."""
        if http_only_field is None or not self.tcp:
            return True
        if self.strict:
            raise HttpOnly(http_only_field)
        return False


def _source(
    source: authorization_pb2.Source,
    trust_domain: str,
    namespace: str,
    http_only: _HttpOnlyCheck,
) -> list[dict[str, Any]]:
    """What a source requires, one matcher per field set, to be ANDed; each field is an OR
    of its values (a `not` field: none of its values)."""
    ids: list[dict[str, Any]] = []

    def add(values: Sequence[str], negated: Sequence[str], build: Any) -> None:
        if values:
            ids.append(_or_ids([build(v) for v in values]))
        if negated:
            ids.append({"not_id": _or_ids([build(v) for v in negated])})

    # Istio's order: principals, request principals, service accounts, trust domains,
    # namespaces, remote IPs, source IPs.
    add(source.principals, source.not_principals, _principal)
    if http_only.keep(
        "requestPrincipals" if source.request_principals or source.not_request_principals else None
    ):
        add(source.request_principals, source.not_request_principals, _request_principal)
    add(
        source.service_accounts,
        source.not_service_accounts,
        lambda a: _service_account(a, namespace),
    )
    add(source.trust_domains, source.not_trust_domains, _trust_domain)
    add(source.namespaces, source.not_namespaces, lambda n: _namespace(n, trust_domain))
    add(source.remote_ip_blocks, source.not_remote_ip_blocks, lambda b: {"remote_ip": _cidr(b)})
    add(source.ip_blocks, source.not_ip_blocks, lambda b: {"direct_remote_ip": _cidr(b)})
    return ids


def _operation(operation: authorization_pb2.Operation, http_only: _HttpOnlyCheck) -> dict[str, Any]:
    rules: list[dict[str, Any]] = []
    for field, values, negate, build in (
        ("methods", operation.methods, False, _method),
        ("notMethods", operation.not_methods, True, _method),
        ("paths", operation.paths, False, _path),
        ("notPaths", operation.not_paths, True, _path),
        ("hosts", operation.hosts, False, _host),
        ("notHosts", operation.not_hosts, True, _host),
        (None, operation.ports, False, _port),  # ports: what a connection does carry
        (None, operation.not_ports, True, _port),
    ):
        if values and http_only.keep(field):
            matched = _or([build(v) for v in values])
            rules.append({"not_rule": matched} if negate else matched)
    if not rules:
        return {"any": True}
    return rules[0] if len(rules) == 1 else {"and_rules": {"rules": rules}}


def _condition(
    condition: authorization_pb2.Condition, trust_domain: str, namespace: str
) -> tuple[dict[str, Any], bool]:
    """(matcher, whether it is about the source); keys as Istio's AuthorizationPolicy defines them."""
    key = condition.key
    header = re.fullmatch(r"request\.headers\[(.+)\]", key)

    def values(build: Any, source: bool) -> tuple[dict[str, Any], bool]:
        matcher = (
            _or_ids([build(v) for v in condition.values])
            if source
            else _or([build(v) for v in condition.values])
        )
        if condition.not_values:
            negated = (
                _or_ids([build(v) for v in condition.not_values])
                if source
                else _or([build(v) for v in condition.not_values])
            )
            negation = {"not_id": negated} if source else {"not_rule": negated}
            if not condition.values:
                return negation, source
            return (
                {"and_ids": {"ids": [matcher, negation]}}
                if source
                else {"and_rules": {"rules": [matcher, negation]}}
            ), source
        return matcher, source

    if header:
        name = header.group(1).strip("\"'")
        return values(lambda v: {"header": {"name": name, "string_match": _string(v)}}, False)
    if key == "source.principal":
        return values(_principal, True)
    if key == "request.auth.principal":
        return values(_request_principal, True)
    claims = _claim_path(key)
    if claims is not None:
        return values(lambda v: _claim(claims, v), True)
    if key == "source.namespace":
        return values(lambda n: _namespace(n, trust_domain), True)
    if key == "source.ip":
        return values(lambda b: {"direct_remote_ip": _cidr(b)}, True)
    if key == "remote.ip":
        return values(lambda b: {"remote_ip": _cidr(b)}, True)
    if key == "source.trustDomain":
        return values(_trust_domain, True)
    if key == "source.serviceAccount":
        return values(lambda a: _service_account(a, namespace), True)
    if key == "destination.ip":
        return values(lambda b: {"destination_ip": _cidr(b)}, False)
    if key == "connection.sni":
        return values(lambda v: {"requested_server_name": _string(v)}, False)
    if key == "destination.port":
        return values(_port, False)
    raise ValueError(f"AuthorizationPolicy condition key {key!r} is not supported")


def _principal(value: str) -> dict[str, Any]:
    return {
        "authenticated": {"principal_name": _string(f"spiffe://{value}" if value != "*" else "*")}
    }


# End users: the payload of the token jwt_authn verified (jwt.py), in its dynamic metadata.
# Every provider writes under the same key (Istio keys by issuer and lets its istio_authn
# filter merge them): RBAC and route matches then read one payload, whoever signed it.
JWT_FILTER = "envoy.filters.http.jwt_authn"
JWT_PAYLOAD = "payload"
_CLAIM_ALIASES = {"request.auth.audiences": ["aud"], "request.auth.presenter": ["azp"]}


def _claim_path(key: str) -> list[str] | None:
    """`request.auth.claims[groups]` -> [groups]; nested claims `[a][b]` -> [a, b]."""
    if key in _CLAIM_ALIASES:
        return _CLAIM_ALIASES[key]
    if not key.startswith("request.auth.claims["):
        return None
    return [k.strip("\"'") for k in re.findall(r"\[([^\]]+)\]", key)]


def _payload(path: Sequence[str], value: dict[str, Any]) -> dict[str, Any]:
    # `sourced_metadata`, not the deprecated `metadata` principal (Envoy 1.40 refuses it
    # under fail_on_any_deprecated_feature); dynamic metadata is its default source.
    return {
        "sourced_metadata": {
            "metadata_matcher": {
                "filter": JWT_FILTER,
                "path": [{"key": JWT_PAYLOAD}, *({"key": k} for k in path)],
                "value": value,
            }
        }
    }


def _claim(path: Sequence[str], value: str) -> dict[str, Any]:
    """A claim is a string or a list of strings (`groups`): either may hold the value."""
    match = _string(value)
    return _or_ids(
        [
            _payload(path, {"string_match": match}),
            _payload(path, {"list_match": {"one_of": {"string_match": match}}}),
        ]
    )


def _request_principal(value: str) -> dict[str, Any]:
    """Istio's `<iss>/<sub>`, matched on the token's `iss` and `sub` claims. The issuer may
    hold slashes (a URL), the subject may not: the value splits at its last slash."""
    present = {"present_match": True}
    if value == "*":
        return _payload(["iss"], present)
    if value.endswith("*") and "/" not in value[:-1]:
        return _payload(["iss"], {"string_match": {"prefix": value[:-1]}})
    if value.startswith("*") and "/" not in value[1:]:
        return _payload(["sub"], {"string_match": {"suffix": value[1:]}})
    issuer, slash, subject = value.rpartition("/")
    if not slash:
        return {"not_id": {"any": True}}  # not `<iss>/<sub>`: no token's principal
    if issuer.startswith("*"):
        iss = {"string_match": {"suffix": issuer[1:]}} if issuer[1:] else present
    else:
        iss = {"string_match": {"exact": issuer}}
    if subject.endswith("*"):
        sub = {"string_match": {"prefix": subject[:-1]}} if subject[:-1] else present
    else:
        sub = {"string_match": {"exact": subject}}
    return {"and_ids": {"ids": [_payload(["iss"], iss), _payload(["sub"], sub)]}}


def _namespace(namespace: str, trust_domain: str) -> dict[str, Any]:
    return {
        "authenticated": {
            "principal_name": {
                "safe_regex": {
                    "regex": f"spiffe://{re.escape(trust_domain)}/ns/{re.escape(namespace)}/.*"
                }
            }
        }
    }


def _trust_domain(value: str) -> dict[str, Any]:
    """The peer certificate's trust domain, as Istio's builder matches it: `*` any SPIFFE
    identity, an exact domain as the prefix `spiffe://<domain>/`, a wildcard one (`prefix*`,
    `*suffix`) as a regex over the domain part only."""
    if value == "*":
        match: dict[str, Any] = {"prefix": "spiffe://"}
    elif "*" not in value:
        match = {"prefix": f"spiffe://{value}/"}
    else:
        before, _, after = value.partition("*")
        domain = f"{re.escape(before)}[^/]*{re.escape(after)}"
        match = {"safe_regex": {"regex": f"spiffe://{domain}/.*"}}
    return {"authenticated": {"principal_name": match}}


def _service_account(value: str, namespace: str) -> dict[str, Any]:
    """`<namespace>/<name>` or `<name>` (the policy's namespace), in any trust domain."""
    account_namespace, slash, account = value.partition("/")
    if not slash:
        account_namespace, account = namespace, value
    regex = f"spiffe://.+/ns/{re.escape(account_namespace)}/(.+/|)sa/{re.escape(account)}(/.+)?"
    return {"authenticated": {"principal_name": {"safe_regex": {"regex": regex}}}}


def _method(method: str) -> dict[str, Any]:
    return {"header": {"name": ":method", "string_match": _string(method)}}


def _path(path: str) -> dict[str, Any]:
    return {"url_path": {"path": _string(path)}}


def _host(host: str) -> dict[str, Any]:
    return {
        "header": {"name": ":authority", "string_match": {**_string(host), "ignore_case": True}}
    }


def _port(port: str) -> dict[str, Any]:
    return {"destination_port": int(port)}


def _string(value: str) -> dict[str, Any]:
    """Istio's string forms: `*` anything, `prefix*`, `*suffix`, else exact."""
    if value == "*":
        return {"safe_regex": {"regex": ".+"}}
    if value.endswith("*"):
        return {"prefix": value[:-1]}
    if value.startswith("*"):
        return {"suffix": value[1:]}
    return {"exact": value}


def _cidr(block: str) -> dict[str, Any]:
    address, _, length = block.partition("/")
    return {"address_prefix": address, "prefix_len": int(length or (128 if ":" in address else 32))}


def _or(rules: list[dict[str, Any]]) -> dict[str, Any]:
    return rules[0] if len(rules) == 1 else {"or_rules": {"rules": rules}}


def _or_ids(ids: list[dict[str, Any]]) -> dict[str, Any]:
    return ids[0] if len(ids) == 1 else {"or_ids": {"ids": ids}}


def _and_ids(ids: list[dict[str, Any]]) -> dict[str, Any]:
    ids = [i for i in ids if i != {"any": True}] or [{"any": True}]
    return ids[0] if len(ids) == 1 else {"and_ids": {"ids": ids}}


def _and_rules(rules: list[dict[str, Any]]) -> dict[str, Any]:
    rules = [r for r in rules if r != {"any": True}] or [{"any": True}]
    return rules[0] if len(rules) == 1 else {"and_rules": {"rules": rules}}
