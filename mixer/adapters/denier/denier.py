"""The denier adapter: answers every check and quota request with one configured error.

Used by Istio's deny samples (`mixer-rule-deny-label`: status code 7, "Not allowed") with a
`checknothing` instance and a rule whose match picks the traffic to refuse. It also takes
`listentry` instances, and `quota` ones, for which it grants nothing.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from mixer.adapter import api
from mixer.adapter.params import ParamReader
from mixer.template.templates import CheckNothing, ListEntry, Quota

FAILED_PRECONDITION = 9
_MAX_CODE = 16  # google.rpc.Code runs 0 (OK) .. 16 (UNAUTHENTICATED)


@dataclasses.dataclass(frozen=True)
class Params:
    status_code: int = FAILED_PRECONDITION
    status_message: str = ""
    valid_duration: datetime.timedelta = datetime.timedelta(seconds=5)
    valid_use_count: int = 1000


DEFAULT_PARAMS = Params()


def parse_params(raw: Mapping[str, Any]) -> tuple[Params, list[api.ConfigError]]:
    reader = ParamReader(raw)
    status = reader.object("status")
    code = status.integer("code", DEFAULT_PARAMS.status_code)
    message = status.string("message")
    status.finish()
    params = Params(
        status_code=code,
        status_message=message,
        valid_duration=reader.duration("validDuration", DEFAULT_PARAMS.valid_duration),
        valid_use_count=reader.integer("validUseCount", DEFAULT_PARAMS.valid_use_count),
    )
    reader.finish()
    errors = reader.errors
    if not 0 < params.status_code <= _MAX_CODE:
        errors.append(
            api.ConfigError(
                "status.code",
                f"must be a google.rpc.Code from 1 to {_MAX_CODE} (a denier never answers OK), "
                f"got {params.status_code}",
            )
        )
    if params.valid_duration < datetime.timedelta(0):
        errors.append(api.ConfigError("validDuration", "must be >= 0"))
    if params.valid_use_count < 0:
        errors.append(api.ConfigError("validUseCount", "must be >= 0"))
    return params, errors


class Handler:
    """Always the same answer; nothing to clean up."""

    def __init__(self, params: Params) -> None:
        self._result = api.CheckResult(
            status_code=params.status_code,
            message=params.status_message,
            valid_duration=params.valid_duration,
            valid_use_count=params.valid_use_count,
        )

    async def handle_check_nothing(self, instance: CheckNothing) -> api.CheckResult:
        return self._result

    async def handle_list_entry(self, instance: ListEntry) -> api.CheckResult:
        return self._result

    async def handle_quota(self, instance: Quota, args: api.QuotaArgs) -> api.QuotaResult:
        return api.QuotaResult(
            granted_amount=0,
            valid_duration=self._result.valid_duration,
            status_code=self._result.status_code,
            message=self._result.message,
        )

    async def close(self) -> None:
        return None


class Builder:
    def __init__(
        self, params: Mapping[str, Any], instances: Mapping[str, Sequence[str]] | None = None
    ) -> None:
        self._params, self._errors = parse_params(params)

    def validate(self) -> list[api.ConfigError]:
        return list(self._errors)

    async def build(self, env: api.Env) -> Handler:
        if self._errors:
            raise ValueError("denier: invalid params: " + "; ".join(map(str, self._errors)))
        return Handler(self._params)


INFO = api.AdapterInfo(
    name="denier",
    description="Rejects any check and quota request with a configurable error",
    templates=("checknothing", "listentry", "quota"),
    new_builder=Builder,
    default_params={
        "status": {"code": FAILED_PRECONDITION},
        "validDuration": "5s",
        "validUseCount": 1000,
    },
)
