"""The contract between Mixer's runtime and its adapters (Istio's mixer/pkg/adapter).

An adapter package exposes `INFO`, an `AdapterInfo`. For each `handler` resource naming
it (`compiledAdapter: memquota`), the runtime makes a builder, gives it the handler's
params, asks it to `validate()` them (config errors refuse the whole config snapshot with
the handler named), then `build()`s a handler. Handlers implement the methods of the
templates the adapter supports; all are async and may be cancelled by the runtime's
timeout, so they must not hold locks across awaits they cannot give up.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

import prometheus_client

from mixer.template.templates import CheckNothing, ListEntry, LogEntry, Metric, Quota

# gRPC status codes adapters answer with (google.rpc.Code).
OK = 0
INVALID_ARGUMENT = 3
PERMISSION_DENIED = 7
RESOURCE_EXHAUSTED = 8
UNAVAILABLE = 14

DEFAULT_VALID_DURATION = datetime.timedelta(seconds=10)
DEFAULT_VALID_USE_COUNT = 200


@dataclasses.dataclass(frozen=True)
class ConfigError:
    """A problem with one field of a handler's params."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclasses.dataclass(frozen=True)
class CheckResult:
    status_code: int = OK
    message: str = ""
    valid_duration: datetime.timedelta = DEFAULT_VALID_DURATION
    valid_use_count: int = DEFAULT_VALID_USE_COUNT

    @property
    def ok(self) -> bool:
        return self.status_code == OK


@dataclasses.dataclass(frozen=True)
class QuotaArgs:
    deduplication_id: str
    amount: int
    best_effort: bool


@dataclasses.dataclass(frozen=True)
class QuotaResult:
    granted_amount: int
    valid_duration: datetime.timedelta = datetime.timedelta(0)
    status_code: int = OK
    message: str = ""


@dataclasses.dataclass
class Env:
    """What the runtime lends a handler: a logger and the registry Mixer serves on /metrics."""

    logger: logging.Logger
    metrics: prometheus_client.CollectorRegistry


class Handler(Protocol):
    async def close(self) -> None: ...


class CheckNothingHandler(Handler, Protocol):
    async def handle_check_nothing(self, instance: CheckNothing) -> CheckResult: ...


class ListEntryHandler(Handler, Protocol):
    async def handle_list_entry(self, instance: ListEntry) -> CheckResult: ...


class QuotaHandler(Handler, Protocol):
    async def handle_quota(self, instance: Quota, args: QuotaArgs) -> QuotaResult: ...


class MetricHandler(Handler, Protocol):
    async def handle_metric(self, instances: Sequence[Metric]) -> None: ...


class LogEntryHandler(Handler, Protocol):
    async def handle_log_entry(self, instances: Sequence[LogEntry]) -> None: ...


# The method the runtime calls for each template.
HANDLER_METHODS: Mapping[str, str] = {
    "checknothing": "handle_check_nothing",
    "listentry": "handle_list_entry",
    "quota": "handle_quota",
    "metric": "handle_metric",
    "logentry": "handle_log_entry",
}


class Builder(Protocol):
    def validate(self) -> list[ConfigError]: ...

    async def build(self, env: Env) -> Handler: ...


@dataclasses.dataclass(frozen=True)
class AdapterInfo:
    name: str  # what `compiledAdapter:` names
    description: str
    templates: tuple[str, ...]
    # A builder for one handler: (params from the handler resource, the names of the
    # instances the rules will send it, by template) -> Builder.
    new_builder: Callable[[Mapping[str, Any], Mapping[str, Sequence[str]]], Builder]
    default_params: Mapping[str, Any] = dataclasses.field(default_factory=dict)


BuildFn = Callable[[Env], Awaitable[Handler]]
