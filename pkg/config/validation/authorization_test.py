"""AuthorizationPolicy; parameter ids are Istio's case names (TestValidateAuthorizationPolicy)."""

from __future__ import annotations

import pytest

from pkg.config.validation.testing import check, validate

SELECTOR = {"matchLabels": {"app": "httpbin", "version": "v1"}}


def rule(source: dict | None = None, operation: dict | None = None, when=None) -> dict:
    out: dict = {}
    if source is not None:
        out["from"] = [{"source": source}]
    if operation is not None:
        out["to"] = [{"operation": operation}]
    if when is not None:
        out["when"] = when
    return out


def policy(*rules: dict, **fields) -> dict:
    return {"selector": SELECTOR, "rules": list(rules), **fields}


GOOD = rule(
    {"principals": ["sa1", "sa2"], "namespaces": ["ns1"], "ipBlocks": ["1.2.3.4", "5.6.0.0/16"]},
    {"methods": ["GET", "HEAD"], "hosts": ["h1"], "ports": ["80"], "paths": ["/p1", "/p2/*"]},
    [
        {"key": "source.ip", "values": ["1.2.3.4", "5.6.7.0/24"]},
        {"key": "request.headers[:authority]", "values": ["v1"]},
    ],
)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param(policy(GOOD), None, id="good"),
        pytest.param(
            policy(rule({"serviceAccounts": ["ns/sa", "other"]})), None, id="good serviceAccounts"
        ),
        pytest.param(
            policy(rule({"serviceAccounts": ["bar/sa"], "namespaces": ["bar"]})),
            "cannot set serviceAccounts with namespaces or principals, found at rule 0",
            id="serviceAccounts and namespaces",
        ),
        pytest.param(
            policy(rule(), action="CUSTOM", provider={"name": "ext"}), None, id="custom-good"
        ),
        pytest.param(
            policy(rule(), action="CUSTOM", provider={"name": ""}),
            "`provider.name` must not be empty",
            id="custom-empty-provider",
        ),
        pytest.param(
            policy(rule({"namespaces": ["ns"]}), action="CUSTOM", provider={"name": "p"}),
            "From.Namespaces is currently not supported with CUSTOM action",
            id="custom-invalid-rule",
        ),
        pytest.param(
            policy(rule(), action="DENY", provider={"name": "p"}),
            "`provider` must not be with non CUSTOM action, found DENY",
            id="provider-wrong-action",
        ),
        pytest.param({"selector": SELECTOR, "action": "ALLOW"}, None, id="allow-rules-nil"),
        pytest.param(
            {"selector": SELECTOR, "action": "DENY"},
            "DENY action without `rules` is meaningless as it will never be triggered, add an empty rule `{}` if you want it be triggered for every request",
            id="deny-rules-nil",
        ),
        pytest.param(
            {"selector": {"matchLabels": {"": "v"}}},
            'empty key is not supported in selector: "=v"',
            id="selector-empty-key",
        ),
        pytest.param(
            {"selector": {"matchLabels": {"app": "*"}}},
            'wildcard is not supported in selector: "app=*"',
            id="selector-wildcard-value",
        ),
        pytest.param(
            {"targetRef": {"group": "", "kind": "Service", "name": "foo"}},
            None,
            id="target-ref-good",
        ),
        pytest.param(
            {"targetRef": {"kind": "Service", "name": "foo", "namespace": "bar"}},
            "targetRef namespace must not be set; cross namespace referencing is not supported",
            id="target-ref-non-empty-namespace",
        ),
        pytest.param(
            {"targetRef": {"kind": "Service"}},
            "targetRef name must be set",
            id="target-ref-empty-name",
        ),
        pytest.param(
            {"targetRef": {"group": "wrong", "kind": "Service", "name": "foo"}},
            "targetRef must be to one of",
            id="target-ref-wrong-group",
        ),
        pytest.param(
            {"selector": SELECTOR, "targetRef": {"kind": "Service", "name": "foo"}},
            "only one of targetRefs or workloadSelector can be set",
            id="target-ref-and-selector-cannot-both-be-set",
        ),
        pytest.param(
            policy({"from": [{}]}),
            "`from.source` must not be nil, found at rule 0",
            id="source-nil",
        ),
        pytest.param(
            policy(rule({})), "`from.source` must not be empty, found at rule 0", id="source-empty"
        ),
        pytest.param(
            policy({"to": [{}]}),
            "`to.operation` must not be nil, found at rule 0",
            id="operation-nil",
        ),
        pytest.param(
            policy(rule(None, {})),
            "`to.operation` must not be empty, found at rule 0",
            id="operation-empty",
        ),
        pytest.param(
            policy(rule({"principals": [""]})),
            "empty value not allowed, found in Principals",
            id="Principals-empty",
        ),
        pytest.param(
            policy(rule({"notPrincipals": [""]})),
            "empty value not allowed, found in NotPrincipals",
            id="NotPrincipals-empty",
        ),
        pytest.param(
            policy(rule({"requestPrincipals": [""]})),
            "empty value not allowed, found in RequestPrincipals",
            id="RequestPrincipals-empty",
        ),
        pytest.param(
            policy(rule({"namespaces": [""]})),
            "empty value not allowed, found in Namespaces",
            id="Namespaces-empty",
        ),
        pytest.param(
            policy(rule({"serviceAccounts": [""]})),
            "empty value not allowed, found in ServiceAccounts",
            id="ServiceAccounts-empty",
        ),
        pytest.param(
            policy(rule({"ipBlocks": [""]})),
            "empty value not allowed, found in IpBlocks",
            id="IpBlocks-empty",
        ),
        pytest.param(
            policy(rule(None, {"hosts": [""]})),
            "empty value not allowed, found in Hosts",
            id="Hosts-empty",
        ),
        pytest.param(
            policy(rule(None, {"ports": [""]})),
            "empty value not allowed, found in Ports",
            id="Ports-empty",
        ),
        pytest.param(
            policy(rule(None, {"methods": [""]})),
            "empty value not allowed, found in Methods",
            id="Methods-empty",
        ),
        pytest.param(
            policy(rule(None, {"paths": [""]})),
            "empty value not allowed, found in Paths",
            id="Paths-empty",
        ),
        pytest.param(
            policy(rule(None, {"notPaths": [""]})),
            "empty value not allowed, found in NotPaths",
            id="NotPaths-empty",
        ),
        pytest.param(
            policy(
                rule(None, {"methods": ["GET"]}, [{"key": "request.headers[x]", "values": [""]}])
            ),
            "empty value not allowed",
            id="value-empty",
        ),
        pytest.param(
            policy(rule({"ipBlocks": ["1.2.3.4:80"]})),
            "bad IP address (1.2.3.4:80)",
            id="invalid ip and port in ipBlocks",
        ),
        pytest.param(
            policy(rule({"remoteIpBlocks": ["1.2.3.4/99"]})),
            "bad CIDR range (1.2.3.4/99)",
            id="invalid ip and port in remoteIpBlocks",
        ),
        pytest.param(
            policy(rule(None, {"methods": ["GET"]}, [{"values": ["v1"]}])),
            "`key` must not be empty",
            id="condition-key-missing",
        ),
        pytest.param(
            policy(rule(None, {"methods": ["GET"]}, [{"key": "source.ip"}])),
            "at least one of `values` or `notValues` must be set for key source.ip",
            id="condition-value-missing",
        ),
        pytest.param(
            policy(rule(None, {"methods": ["GET"]}, [{"key": "source.ip", "values": ["a.b.c.d"]}])),
            "invalid `value` for `key` source.ip: bad IP address (a.b.c.d)",
            id="condition-value-invalid",
        ),
        pytest.param(
            policy(
                rule(None, {"methods": ["GET"]}, [{"key": "source.ip", "notValues": ["a.b.c.d"]}])
            ),
            "invalid `notValue` for `key` source.ip: bad IP address (a.b.c.d)",
            id="condition-notValue-invalid",
        ),
        pytest.param(
            policy(rule(None, {"methods": ["GET"]}, [{"key": "key1", "values": ["v1"]}])),
            "invalid `value` for `key` key1: unknown attribute: key1",
            id="condition-unknown",
        ),
        # Istio accepts any non-empty method token and any path but malformed templates.
        pytest.param(
            policy(rule(None, {"methods": ["FETCH", "MKCOL"]})), None, id="methods are any token"
        ),
        pytest.param(
            policy(rule(None, {"paths": ["productpage", "*.png", "/a/{*}/b"]})),
            None,
            id="paths Istio accepts",
        ),
        pytest.param(
            policy(rule(None, {"paths": ["/a/{**}/b/{*}"]})),
            "{**} is not the last operator",
            id="path template {**} not last",
        ),
        pytest.param(
            policy(rule(None, {"paths": ["/a/{x}"]})),
            "Contains '{' or '}' beyond a supported path template",
            id="path template with braces",
        ),
        pytest.param(
            policy(rule(None, {"ports": ["http"]})), "bad port (http)", id="ports must be numbers"
        ),
    ],
)
def test_validate_authorization_policy(spec: dict, error: str | None):
    check(validate("AuthorizationPolicy", spec), error)


@pytest.mark.parametrize(
    ("spec", "warns"),
    [
        pytest.param(
            policy(rule({"requestPrincipals": ["p"]}), action="DENY"), True, id="L7DenyWithFrom"
        ),
        pytest.param(
            policy(rule(None, {"methods": ["GET"]}), action="DENY"), True, id="L7DenyWithTo"
        ),
        pytest.param(
            policy(rule({"requestPrincipals": ["p"]}, {"methods": ["GET"]}), action="DENY"),
            True,
            id="L7DenyWithFromAndTo",
        ),
        pytest.param(
            policy(
                rule({"requestPrincipals": ["p"]}, {"methods": ["GET"], "ports": ["8080"]}),
                action="DENY",
            ),
            False,
            id="L7DenyWithFromAndToWithPort",
        ),
    ],
)
def test_validate_authorization_policy_l7_deny_warnings(spec: dict, warns: bool):
    outcome = validate("AuthorizationPolicy", spec)
    assert outcome.ok, outcome.errors
    assert outcome.has_warning("will deny all traffic to TCP ports") is warns


# Source.trustDomains / notTrustDomains (istio/api field 13, 14); ids are Istio's case names
# (TestCheckTrustDomainValues, TestCheckWildcardValues in pkg/config/security).
@pytest.mark.parametrize("field", ["trustDomains", "notTrustDomains"])
@pytest.mark.parametrize(
    ("values", "error"),
    [
        pytest.param(["cluster.local"], None, id="exact"),
        pytest.param(["*"], None, id="presence wildcard"),
        pytest.param(["cluster-*"], None, id="prefix wildcard"),
        pytest.param(["*-cluster"], None, id="suffix wildcard"),
        pytest.param([""], "empty value not allowed, found in", id="empty"),
        pytest.param(["cluster.local/ns/foo"], "trust domain must not contain '/'", id="slash"),
        pytest.param(["spiffe://cluster.local"], "trust domain must not contain '/'", id="spiffe uri"),
        pytest.param(["fo*-bar"], "wildcard is only allowed at the start or end", id="middle wildcard"),
        pytest.param(["fo*bar*"], "at most one wildcard is allowed", id="multiple wildcards"),
    ],
)  # fmt: skip
def test_check_trust_domain_values(field: str, values: list[str], error: str | None):
    outcome = validate("AuthorizationPolicy", policy(rule({field: values})))
    check(outcome, error)
    if error:
        assert f"source.{field}" in outcome.errors[0], outcome.errors


def test_a_source_of_only_trust_domains_is_not_empty_and_counts_as_no_tcp_attribute():
    assert validate("AuthorizationPolicy", policy(rule({"trustDomains": ["td"]}))).ok
    # As Istio counts them: a DENY on trust domains alone cannot be told on plain TCP.
    outcome = validate("AuthorizationPolicy", policy(rule({"trustDomains": ["td"]}), action="DENY"))
    assert outcome.ok, outcome.errors
    assert outcome.has_warning("will deny all traffic to TCP ports")


def test_trust_domains_with_custom_action_are_refused():
    for spec in (
        policy(rule({"trustDomains": ["td"]}), action="CUSTOM", provider={"name": "p"}),
        policy(rule({"notTrustDomains": ["td"]}), action="CUSTOM", provider={"name": "p"}),
    ):
        check(
            validate("AuthorizationPolicy", spec),
            "TrustDomains is currently not supported with CUSTOM action",
        )
    check(
        validate("AuthorizationPolicy", policy(rule(when=[{"key": "source.trustDomain", "values": ["td"]}]), action="CUSTOM", provider={"name": "p"})),
        "source.trustDomain is currently not supported with CUSTOM action",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("values", "error"),
    [(["td", "*"], None), (["a*b"], "wildcard is only allowed at the start or end"), ([""], "empty value")],
)  # fmt: skip
def test_a_source_trust_domain_condition_takes_wildcard_values(values, error):
    spec = policy(rule(when=[{"key": "source.trustDomain", "values": values}]))
    check(validate("AuthorizationPolicy", spec), error)
