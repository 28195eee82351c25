"""The denier: Bookinfo's deny sample, every template it claims, and its config errors."""

from __future__ import annotations

import datetime

import yaml

from mixer.adapter import api, testing
from mixer.adapters.denier import denier
from mixer.template.templates import CheckNothing, ListEntry, Quota

# spec of `mixer-rule-deny-label`'s handler (samples/bookinfo, Istio 0.8).
BOOKINFO_DENY = yaml.safe_load(
    """
status:
  code: 7
  message: Not allowed
"""
)


@testing.run_async
async def test_bookinfo_deny_sample_refuses_checks():
    async with testing.open_handler(denier.INFO, BOOKINFO_DENY) as handler:
        result = await handler.handle_check_nothing(CheckNothing("denyreviewsv3request.default"))
        assert result.status_code == api.PERMISSION_DENIED
        assert result.message == "Not allowed"
        assert not result.ok
        # Istio's defaults for how long the client may cache the denial.
        assert result.valid_duration == datetime.timedelta(seconds=5)
        assert result.valid_use_count == 1000


@testing.run_async
async def test_list_entries_are_denied_too():
    async with testing.open_handler(denier.INFO, BOOKINFO_DENY) as handler:
        result = await handler.handle_list_entry(ListEntry("appversion.default", "v1"))
        assert (result.status_code, result.message) == (api.PERMISSION_DENIED, "Not allowed")


@testing.run_async
async def test_a_denied_quota_grants_nothing():
    async with testing.open_handler(denier.INFO, BOOKINFO_DENY) as handler:
        args = api.QuotaArgs(deduplication_id="d1", amount=3, best_effort=True)
        result = await handler.handle_quota(Quota("requestcount.default", {}), args)
        assert result.granted_amount == 0
        assert result.status_code == api.PERMISSION_DENIED


@testing.run_async
async def test_defaults_answer_failed_precondition():
    async with testing.open_handler(denier.INFO, {}) as handler:
        result = await handler.handle_check_nothing(CheckNothing("x.default"))
        assert result.status_code == denier.FAILED_PRECONDITION


@testing.run_async
async def test_caching_params_are_returned():
    params = {"status": {"code": 7}, "validDuration": "250ms", "validUseCount": 3}
    async with testing.open_handler(denier.INFO, params) as handler:
        result = await handler.handle_check_nothing(CheckNothing("x.default"))
        assert result.valid_duration == datetime.timedelta(milliseconds=250)
        assert result.valid_use_count == 3


def test_config_errors_name_their_fields():
    errors = testing.config_errors(
        denier.INFO,
        {
            "status": {"code": 0, "mesage": "typo"},
            "validDuration": "soon",
            "validUseCount": -1,
            "valid_duration": "1s",
        },
    )
    assert "status.mesage: unknown field (known: code, message)" in errors
    assert any(e.startswith("status.code: must be a google.rpc.Code") for e in errors)
    assert "validDuration: expected a duration such as 10s or 500ms, got 'soon'" in errors
    assert "validUseCount: must be >= 0" in errors
    assert "valid_duration: unknown field (did you mean validDuration?)" in errors


def test_struct_numbers_arrive_as_floats():
    # The runtime hands params through a protobuf Struct, where every number is a double.
    assert (
        testing.config_errors(denier.INFO, {"status": {"code": 7.0}, "validUseCount": 10.0}) == []
    )
    assert testing.config_errors(denier.INFO, {"validUseCount": 1.5}) == [
        "validUseCount: expected an integer, got 1.5"
    ]
