"""Request checks against the OSB spec: the version header, originating identity, bodies."""

from __future__ import annotations

import base64
import json

import pytest

from broker.osb import errors, model, parse

INFO = model.RequestInfo(api_version=(2, 17), username="platform")


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2.17", (2, 17)), ("2.13", (2, 13)), (" 2.14 ", (2, 14)), ("2.99", (2, 99))],
)
def test_versions_this_broker_speaks(header, expected):
    assert parse.api_version(header) == expected


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, "MissingVersion"),
        ("", "MissingVersion"),
        ("abc", "BadVersion"),
        ("2", "BadVersion"),
        ("2.x", "BadVersion"),
        ("2.12", "UnsupportedVersion"),
        ("1.99", "UnsupportedVersion"),
        ("3.0", "UnsupportedVersion"),
    ],
)
def test_versions_refused_with_412(header, error):
    with pytest.raises(errors.PreconditionFailed) as caught:
        parse.api_version(header)
    assert caught.value.status == 412
    assert caught.value.error == error
    assert "2.13 to 2.x (2.17)" in caught.value.description


def _identity(value) -> str:
    return "cloudfoundry " + base64.b64encode(json.dumps(value).encode()).decode()


def test_originating_identity_is_decoded():
    found = parse.originating_identity(_identity({"user_id": "683ea748"}))
    assert found == model.OriginatingIdentity("cloudfoundry", {"user_id": "683ea748"})
    assert parse.originating_identity(None) is None


@pytest.mark.parametrize(
    "header",
    [
        "cloudfoundry",
        "cloudfoundry !!!not-base64",
        "kubernetes " + base64.b64encode(b"[1, 2]").decode(),
        "kubernetes " + base64.b64encode(b"{not json").decode(),
        "kubernetes " + base64.b64encode(b'{"a": NaN}').decode(),
    ],
)
def test_malformed_originating_identity_is_a_bad_request(header):
    with pytest.raises(errors.BadRequest, match="X-Broker-API-Originating-Identity"):
        parse.originating_identity(header)


def test_provision_body():
    body = {
        "service_id": "s",
        "plan_id": "p",
        "organization_guid": "o",
        "space_guid": "x",
        "parameters": {"a": 1},
        "context": {"platform": "kubernetes"},
        "extension_field": "ignored, as the spec requires",
    }
    request = parse.provision("i", body, {"accepts_incomplete": "true"}, INFO)
    assert (request.service_id, request.plan_id, request.parameters) == ("s", "p", {"a": 1})
    assert request.accepts_incomplete is True


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"plan_id": "p", "organization_guid": "o", "space_guid": "x"}, "body.service_id is required"),
        ({"service_id": 7, "plan_id": "p", "organization_guid": "o", "space_guid": "x"}, "body.service_id must be a string, got a number"),
        ({"service_id": "", "plan_id": "p", "organization_guid": "o", "space_guid": "x"}, "body.service_id must not be empty"),
        ({"service_id": "s", "plan_id": "p", "space_guid": "x"}, "body.organization_guid is required"),
        ({"service_id": "s", "plan_id": "p", "organization_guid": "o", "space_guid": "x", "parameters": [1]}, "body.parameters must be an object, got an array"),
        ({"service_id": "s", "plan_id": "p", "organization_guid": "o", "space_guid": "x", "maintenance_info": {}}, "body.maintenance_info.version is required"),
    ],
)  # fmt: skip
def test_provision_body_refusals(body, message):
    with pytest.raises(errors.BadRequest) as caught:
        parse.provision("i", body, {}, INFO)
    assert caught.value.description == message


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b"", "application/json", "the request needs a JSON object body"),
        (b"{", "application/json", "the body is not valid JSON"),
        (b"[]", "application/json", "the body must be a JSON object, got an array"),
        (b"{}", "text/plain", "the body must be application/json"),
        (b'{"a": NaN}', "", "the body is not valid JSON: NaN is not a JSON number"),
        (b'{"a": 1e999}', "", "body.a: numbers must be finite"),
        (b'{"a": 123456789012345678901}', "", "body.a: integers must be within"),
        (b'{"a": "\\ud800"}', "", "body.a: text must be valid Unicode"),
        (b"\xff", "", "the body is not UTF-8"),
        (b'{"a":' * 40 + b"1" + b"}" * 40, "", "nested deeper than 32 levels"),
    ],
)
def test_malformed_bodies(raw, content_type, message):
    with pytest.raises(errors.BadRequest) as caught:
        parse.json_body(raw, content_type)
    assert message in caught.value.description, caught.value.description


def test_json_media_types():
    assert parse.json_body(b'{"a": 1}', "application/json; charset=utf-8") == {"a": 1}
    assert parse.json_body(b'{"a": 1}', "application/merge-patch+json") == {"a": 1}


def test_query_flags_and_required_parameters():
    assert parse.flag({}, "accepts_incomplete") is False
    assert parse.flag({"accepts_incomplete": "True"}, "accepts_incomplete") is True
    with pytest.raises(errors.BadRequest, match="must be true or false, got 'yes'"):
        parse.flag({"accepts_incomplete": "yes"}, "accepts_incomplete")
    with pytest.raises(errors.BadRequest, match="query parameter plan_id is required"):
        parse.deprovision("i", {"service_id": "s"}, INFO)


def test_bind_resource_app_guid_wins_over_the_deprecated_field():
    body = {
        "service_id": "s",
        "plan_id": "p",
        "app_guid": "old",
        "bind_resource": {"app_guid": "new"},
    }
    assert parse.bind("i", "b", body, {}, INFO).app_guid == "new"
    assert (
        parse.bind(
            "i", "b", {"service_id": "s", "plan_id": "p", "app_guid": "old"}, {}, INFO
        ).app_guid
        == "old"
    )
