"""HTTP routes of a VirtualService; each case is named after Istio's validation_test.go case.

Test functions follow Istio's (TestValidateHTTPRoute -> test_validate_http_route) and each
parameter id is the name of Istio's own case, so a failure here can be compared with Istio's.
"""

from __future__ import annotations

from typing import Any

import pytest

from pkg.config.validation.testing import check, validate

DEST = {"destination": {"host": "foo.baz"}}


def vs(*http: dict, hosts=("foo.bar",), gateways=()) -> dict:
    spec: dict = {"hosts": list(hosts), "http": list(http)}
    if gateways:
        spec["gateways"] = list(gateways)
    return spec


def route(**fields) -> dict:
    return {"route": [DEST], **fields}


def two(w1: int | None, w2: int | None) -> dict:
    first: dict[str, Any] = {"destination": {"host": "foo.baz", "subset": "v1"}}
    second: dict[str, Any] = {"destination": {"host": "foo.baz", "subset": "v2"}}
    if w1 is not None:
        first["weight"] = w1
    if w2 is not None:
        second["weight"] = w2
    return {"route": [first, second]}


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param({}, "HTTP route, redirect or direct_response is required", id="empty"),
        pytest.param(route(), None, id="simple"),
        pytest.param({"route": [{}]}, "destination is required", id="no destination"),
        pytest.param(two(25, 75), None, id="weighted"),
        # Relative weights (today's Istio): totals other than 100 are fine.
        pytest.param(two(55, 70), None, id="total weight > 100"),
        pytest.param(two(25, 50), None, id="total weight < 100"),
        pytest.param(
            {"redirect": {"uri": "/lerp", "authority": "foo.biz"}}, None, id="simple redirect"
        ),
        pytest.param(
            {"redirect": {"uri": "/lerp"}, "route": [DEST]},
            "HTTP route cannot contain both route and redirect",
            id="conflicting redirect and route",
        ),
        pytest.param(
            route(
                headers={
                    "request": {"add": {"x": "y"}, "set": {"a": "b"}, "remove": ["c"]},
                    "response": {"add": {"x": "y"}, "set": {"a": "b"}, "remove": ["c"]},
                }
            ),
            None,
            id="request response headers",
        ),
        pytest.param(
            route(headers={"request": {"add": {"": "y"}}}),
            "header name cannot be empty",
            id="empty header name - request add",
        ),
        pytest.param(
            route(headers={"request": {"set": {"": "y"}}}),
            "header name cannot be empty",
            id="empty header name - request set",
        ),
        pytest.param(
            route(headers={"request": {"remove": [""]}}),
            "header name cannot be empty",
            id="empty header name - request remove",
        ),
        pytest.param(
            route(headers={"response": {"add": {"": "y"}}}),
            "header name cannot be empty",
            id="empty header name - response add",
        ),
        pytest.param(
            route(headers={"response": {"set": {"": "y"}}}),
            "header name cannot be empty",
            id="empty header name - response set",
        ),
        pytest.param(
            route(headers={"response": {"remove": [""]}}),
            "header name cannot be empty",
            id="empty header name - response remove",
        ),
        pytest.param(
            route(headers={"request": {"set": {"x": "100%%"}}}), None, id="envoy escaped % set"
        ),
        pytest.param(
            route(headers={"request": {"set": {"x": "%HOSTNAME%"}}}), None, id="envoy variable set"
        ),
        pytest.param(
            route(headers={"request": {"set": {"x": "100%"}}}),
            "header value configuration: invalid header configuration. Un-escaped %",
            id="envoy unescaped % set",
        ),
        pytest.param(
            route(headers={"request": {"add": {"x": "100%%"}}}), None, id="envoy escaped % add"
        ),
        pytest.param(
            route(headers={"request": {"add": {"x": "%HOSTNAME%"}}}), None, id="envoy variable add"
        ),
        pytest.param(
            route(headers={"request": {"add": {"x": "abc%123"}}}),
            "Un-terminated variable expression",
            id="envoy unescaped % add",
        ),
        pytest.param(
            route(match=[{"headers": {"header": {"prefix": ""}}}]),
            "prefix string match should not be empty",
            id="empty prefix header match",
        ),
        pytest.param(route(match=[{"uri": {"prefix": ""}}]), None, id="nil match"),
        pytest.param(
            route(mirror={"host": "foo.bar"}, mirrorPercentage={"value": 101}),
            "mirror percentage must have a max value of 100",
            id="invalid mirror percentage",
        ),
        pytest.param(
            route(mirror={"host": "foo.bar"}, mirrorPercentage={"value": 1.5}),
            None,
            id="valid mirror percentage",
        ),
        pytest.param(
            route(mirror={"host": "foo.bar"}, mirrorPercentage={"value": -1}),
            "mirror percentage must have a min value of 0",
            id="negative mirror percentage",
        ),
        pytest.param(
            route(mirrors=[{"percentage": {"value": 50}}]),
            "destination is required for mirrors",
            id="mirrors without destination",
        ),
        pytest.param(
            route(mirrors=[{"destination": {"host": "foo.baz"}, "percentage": {"value": 101}}]),
            "mirror percentage must have a max value of 100",
            id="mirrors invalid mirror percentage",
        ),
        pytest.param(
            route(mirror={"host": "a.b"}, mirrors=[{"destination": {"host": "foo.baz"}}]),
            "HTTP route cannot contain both mirror and mirrors",
            id="conflicting mirror and mirrors",
        ),
    ],
)
def test_validate_http_route(spec: dict, error: str | None):
    check(validate("VirtualService", vs(spec)), error)


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        pytest.param(
            two(0, 0),
            "total destination weight = 0",
            id="total weight = 0 with multi RouteDestination",
        ),
        pytest.param({"route": [{**DEST, "weight": 0}]}, None, id="weight = 0"),
        pytest.param(two(-1, 101), "weight -1 < 0", id="weight < 0"),
        pytest.param(two(60, 30), None, id="total weight < 100"),
        pytest.param(two(4, 1), None, id="weighted"),
        pytest.param(
            two(None, None),
            "total destination weight = 0",
            id="total weight = 0 with multi RouteDestination, unset",
        ),
        pytest.param(
            {"route": [{"destination": {"host": "*"}}]},
            "invalid destination host *",
            id="wildcard",
        ),
        pytest.param(
            {"route": [{"destination": {"host": "foo.*.com"}}]},
            "domain name",
            id="bad wildcard",
        ),
        pytest.param(
            {"route": [{"destination": {"host": "foo.bar", "subset": "v.1"}}]},
            "subset name is invalid: v.1",
            id="bad subset",
        ),
    ],
)
def test_validate_route_destination(spec: dict, error: str | None):
    check(validate("VirtualService", vs(spec)), error)
    tcp = {"hosts": ["foo.bar"], "tcp": [{"route": spec["route"]}]}
    check(validate("VirtualService", tcp), error)


@pytest.mark.parametrize(
    ("retries", "error"),
    [
        pytest.param(
            {"attempts": 10, "perTryTimeout": "2s", "retryOn": "5xx,gateway-error"},
            None,
            id="valid",
        ),
        pytest.param({"attempts": 0}, None, id="disable retries"),
        pytest.param(
            {"attempts": 0, "perTryTimeout": "2s"},
            "http retry policy configured when attempts are set to 0 (disabled)",
            id="invalid, retry policy configured but attempts set to zero",
        ),
        pytest.param(
            {"attempts": 0, "retryRemoteLocalities": True},
            "http retry policy configured when attempts are set to 0 (disabled)",
            id="invalid, retryRemoteLocalities configured but attempts set to zero",
        ),
        pytest.param({"attempts": 10}, None, id="valid default"),
        pytest.param(
            {"attempts": 10, "retryOn": "503,connect-failure"}, None, id="valid http status retryOn"
        ),
        pytest.param({"attempts": -1}, "attempts cannot be negative", id="invalid attempts"),
        pytest.param(
            {"attempts": 10, "perTryTimeout": "0.0001s"},
            "duration must be greater than 1ms",
            id="timeout too small",
        ),
        pytest.param(
            {"attempts": 10, "backoff": "0.0005s"},
            "duration must be greater than 1ms",
            id="invalid backoff",
        ),
        pytest.param(
            {"attempts": 10, "retryOn": "5xx,invalid policy"},
            '"invalid policy" is not a valid retryOn policy',
            id="invalid policy retryOn",
        ),
        pytest.param(
            {"attempts": 10, "retryOn": "5xx,570"},
            '"570" is not a valid retryOn policy',
            id="invalid http status retryOn",
        ),
    ],
)
def test_validate_http_retry(retries: dict, error: str | None):
    check(validate("VirtualService", vs(route(retries=retries))), error)


@pytest.mark.parametrize(
    ("cors", "error"),
    [
        pytest.param(
            {
                "allowMethods": ["GET", "POST"],
                "allowHeaders": ["content-type"],
                "exposeHeaders": ["x-custom-header"],
                "maxAge": "5s",
            },
            None,
            id="valid",
        ),
        pytest.param(
            {"allowMethods": ["GET", "PUTT"]},
            '"PUTT" is not a supported HTTP method',
            id="bad method",
        ),
        pytest.param(
            {"allowHeaders": ["<>"]}, "header name <> is not a valid header name", id="bad header"
        ),
        pytest.param(
            {"maxAge": "5.5s"},
            "max_age duration is accurate only to seconds precision",
            id="bad max age",
        ),
        pytest.param(
            {"allowOrigins": [{"exact": ""}]},
            "is not a valid match type for CORS allow origins",
            id="empty matchType AllowOrigins",
        ),
        pytest.param(
            {"allowOrigins": [{"prefix": "http://"}]}, None, id="non empty matchType AllowOrigins"
        ),
    ],
)
def test_validate_cors_policy(cors: dict, error: str | None):
    check(validate("VirtualService", vs(route(corsPolicy=cors))), error)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("foo", None),
        ("%HOSTNAME%", None),
        ("100%%", None),
        ("prefix %HOSTNAME% suffix", None),
        ("%DOWNSTREAM_PEER_CERT_V_END(%b %d %H:%M:%S %Y %Z)%", None),
        ("%DYNAMIC_METADATA(com.test.my_filter)%", None),
        ('%REQ(["a", "b"])%', None),
        ("%START_TIME%%", "header value configuration: invalid header configuration"),
        ("abc%123", "header value configuration: invalid header configuration"),
        ("a\nb", "is invalid"),
    ],
)
def test_validate_http_header_value(value: str, error: str | None):
    check(validate("VirtualService", vs(route(headers={"request": {"set": {"x": value}}}))), error)


@pytest.mark.parametrize(
    ("redirect", "error"),
    [
        pytest.param({"uri": "/new", "authority": "foo.biz"}, None, id="happy"),
        pytest.param(
            {},
            "redirect must specify URI, authority, scheme, or port",
            id="empty uri and authority",
        ),
        pytest.param({"uri": "/new", "redirectCode": 308}, None, id="happy redirect code"),
        pytest.param({"uri": "/new", "redirectCode": 300}, None, id="300 is a 3xx code"),
        pytest.param(
            {"uri": "/new", "redirectCode": 200},
            "200 is not a valid redirect code, must be 3xx",
            id="bad redirect code",
        ),
        pytest.param(
            {"scheme": "ftp"}, 'invalid redirect scheme, must be "http" or "https"', id="bad scheme"
        ),
    ],
)
def test_validate_http_redirect(redirect: dict, error: str | None):
    check(validate("VirtualService", vs({"redirect": redirect})), error)


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        pytest.param({"abort": {"httpStatus": 500, "percentage": {"value": 50}}}, None, id="valid"),
        pytest.param(
            {"abort": {"httpStatus": 500, "percentage": {"value": -1}}},
            "is neither 0.0, nor in range [0.0001, 100.0]",
            id="invalid percentage",
        ),
        pytest.param(
            {"abort": {"httpStatus": 9000}},
            "HTTP status 9000 is not in range 200-599",
            id="invalid http status",
        ),
        pytest.param({"abort": {"grpcStatus": "NOT_FOUND"}}, None, id="valid grpc status"),
        pytest.param(
            {"abort": {"grpcStatus": "BOGUS"}},
            'gRPC status "BOGUS" is not supported',
            id="invalid grpc status",
        ),
        pytest.param(
            {"abort": {"http2Error": "x"}},
            "HTTP/2 abort fault injection not supported yet",
            id="unsupported http2 error",
        ),
        pytest.param(
            {}, "HTTP fault injection must have an abort and/or a delay", id="empty fault"
        ),
    ],
)
def test_validate_http_fault_injection_abort(fault: dict, error: str | None):
    check(validate("VirtualService", vs(route(fault=fault))), error)


@pytest.mark.parametrize(
    ("delay", "error"),
    [
        pytest.param({"fixedDelay": "3s", "percentage": {"value": 50}}, None, id="valid fixed"),
        pytest.param(
            {"fixedDelay": "0.0005s"}, "duration must be greater than 1ms", id="invalid fixed"
        ),
        pytest.param(
            {"fixedDelay": "1.5ms"},
            "only durations to ms precision are supported",
            id="sub-millisecond fixed",
        ),
        pytest.param(
            {"exponentialDelay": "3s"}, "exponentialDelay not supported yet", id="valid exp"
        ),
    ],
)
def test_validate_http_fault_injection_delay(delay: dict, error: str | None):
    check(validate("VirtualService", vs(route(fault={"delay": delay}))), error)


@pytest.mark.parametrize(
    ("rewrite", "error"),
    [
        pytest.param({"uri": "/new"}, None, id="uri and authority"),
        pytest.param(
            {},
            "rewrite must specify at least one of URI, UriRegexRewrite, or authority",
            id="no uri or authority",
        ),
        pytest.param(
            {"uri": "/a", "uriRegexRewrite": {"match": "a", "rewrite": "b"}},
            "rewrite may only contain one of URI or UriRegexRewrite",
            id="uri and uriRegexRewrite",
        ),
        pytest.param(
            {"uriRegexRewrite": {"match": "a"}},
            "UriRegexRewrite requires both Rewrite and Match fields to be specified",
            id="only match",
        ),
        pytest.param(
            {"uriRegexRewrite": {"match": "(", "rewrite": "b"}},
            "invalid regular expression",
            id="invalid match regex",
        ),
    ],
)
def test_validate_http_rewrite(rewrite: dict, error: str | None):
    check(validate("VirtualService", vs(route(rewrite=rewrite))), error)


def test_validate_http_redirect_codes_envoy_lacks_are_a_warning():
    outcome = validate("VirtualService", vs({"redirect": {"uri": "/new", "redirectCode": 300}}))
    assert outcome.ok
    assert outcome.has_warning("Redirect Code 300 is not yet supported")


def test_validate_virtual_service_set_authority_in_rewrite_and_header():
    spec = route(
        rewrite={"authority": "a.com"}, headers={"request": {"set": {":authority": "b.com"}}}
    )
    check(validate("VirtualService", vs(spec)), "authority header cannot be set multiple times")
