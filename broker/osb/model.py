"""The OSB API as typed data: what each request asks and each answer carries, and the
`ServiceBroker` protocol the HTTP layer (api.py) drives.

The HTTP layer turns requests into these dataclasses after checking them against the spec
(parse.py), so a broker implementation only sees well-formed requests and only returns
well-formed answers.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any, Protocol

JsonObject = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class OriginatingIdentity:
    """X-Broker-API-Originating-Identity: `<platform> <base64 of a JSON object>`, decoded."""

    platform: str
    value: JsonObject


@dataclasses.dataclass(frozen=True)
class RequestInfo:
    """What every request says about itself, beside its body."""

    api_version: tuple[int, int]
    username: str  # the basic-auth user the platform signed in as
    originating_identity: OriginatingIdentity | None = None
    request_identity: str = ""  # X-Broker-API-Request-Identity, echoed in the answer


@dataclasses.dataclass(frozen=True)
class ProvisionRequest:
    instance_id: str
    service_id: str
    plan_id: str
    organization_guid: str
    space_guid: str
    context: JsonObject
    parameters: JsonObject
    maintenance_info_version: str | None
    accepts_incomplete: bool
    info: RequestInfo


@dataclasses.dataclass(frozen=True)
class UpdateRequest:
    instance_id: str
    service_id: str
    plan_id: str | None  # None: keep the plan
    parameters: JsonObject | None  # None: keep the parameters
    context: JsonObject | None
    previous_plan_id: str | None
    maintenance_info_version: str | None
    accepts_incomplete: bool
    info: RequestInfo


@dataclasses.dataclass(frozen=True)
class DeprovisionRequest:
    instance_id: str
    service_id: str
    plan_id: str
    accepts_incomplete: bool
    info: RequestInfo


@dataclasses.dataclass(frozen=True)
class BindRequest:
    instance_id: str
    binding_id: str
    service_id: str
    plan_id: str
    app_guid: str | None
    route: str | None
    context: JsonObject
    parameters: JsonObject
    predecessor_binding_id: str | None
    accepts_incomplete: bool
    info: RequestInfo


@dataclasses.dataclass(frozen=True)
class UnbindRequest:
    instance_id: str
    binding_id: str
    service_id: str
    plan_id: str
    accepts_incomplete: bool
    info: RequestInfo


@dataclasses.dataclass(frozen=True)
class LastOperationRequest:
    instance_id: str
    binding_id: str | None  # None: the instance's own last operation
    service_id: str | None
    plan_id: str | None
    operation: str | None


class Outcome(enum.Enum):
    """How a mutating request ended; the HTTP layer picks the status code from it."""

    CREATED = 201  # provision, bind: made now
    EXISTS = 200  # provision, bind: an identical one was already there
    DONE = 200  # update, deprovision, unbind: done now
    ACCEPTED = 202  # any: running in the background; poll last_operation


class OperationState(enum.Enum):
    IN_PROGRESS = "in progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class Plan:
    id: str
    name: str
    description: str
    free: bool = True
    bindable: bool = True
    plan_updateable: bool = True
    metadata: JsonObject = dataclasses.field(default_factory=dict)
    maximum_polling_duration: int | None = None  # seconds, for plans that run in the background

    def to_json(self) -> JsonObject:
        body: JsonObject = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "free": self.free,
            "bindable": self.bindable,
            "plan_updateable": self.plan_updateable,
        }
        if self.metadata:
            body["metadata"] = self.metadata
        if self.maximum_polling_duration is not None:
            body["maximum_polling_duration"] = self.maximum_polling_duration
        return body


@dataclasses.dataclass(frozen=True)
class Service:
    id: str
    name: str
    description: str
    plans: tuple[Plan, ...]
    bindable: bool = True
    instances_retrievable: bool = True
    bindings_retrievable: bool = True
    allow_context_updates: bool = True
    plan_updateable: bool = True
    tags: tuple[str, ...] = ()
    metadata: JsonObject = dataclasses.field(default_factory=dict)

    def to_json(self) -> JsonObject:
        body: JsonObject = {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "bindable": self.bindable,
            "instances_retrievable": self.instances_retrievable,
            "bindings_retrievable": self.bindings_retrievable,
            "allow_context_updates": self.allow_context_updates,
            "plan_updateable": self.plan_updateable,
            "plans": [p.to_json() for p in self.plans],
        }
        if self.tags:
            body["tags"] = list(self.tags)
        if self.metadata:
            body["metadata"] = self.metadata
        return body


@dataclasses.dataclass(frozen=True)
class Catalog:
    services: tuple[Service, ...]

    def to_json(self) -> JsonObject:
        return {"services": [s.to_json() for s in self.services]}


@dataclasses.dataclass(frozen=True)
class ProvisionResult:
    outcome: Outcome
    operation: str | None = None  # with ACCEPTED
    dashboard_url: str | None = None
    metadata: JsonObject | None = None


@dataclasses.dataclass(frozen=True)
class OperationResult:
    """The answer to an update, deprovision or unbind."""

    outcome: Outcome
    operation: str | None = None  # with ACCEPTED


@dataclasses.dataclass(frozen=True)
class Endpoint:
    host: str
    ports: tuple[str, ...]
    protocol: str = "tcp"

    def to_json(self) -> JsonObject:
        return {"host": self.host, "ports": list(self.ports), "protocol": self.protocol}


@dataclasses.dataclass(frozen=True)
class BindingView:
    """A binding as bind (200/201) and fetch return it."""

    credentials: JsonObject
    endpoints: tuple[Endpoint, ...] = ()
    expires_at: str | None = None  # RFC 3339
    renew_before: str | None = None
    parameters: JsonObject | None = None  # returned by fetch only

    def to_json(self, *, fetched: bool = False) -> JsonObject:
        body: JsonObject = {"credentials": self.credentials}
        if self.endpoints:
            body["endpoints"] = [e.to_json() for e in self.endpoints]
        metadata = {
            k: v
            for k, v in (("expires_at", self.expires_at), ("renew_before", self.renew_before))
            if v
        }
        if metadata:
            body["metadata"] = metadata
        if fetched and self.parameters is not None:
            body["parameters"] = self.parameters
        return body


@dataclasses.dataclass(frozen=True)
class BindResult:
    outcome: Outcome
    binding: BindingView | None = None  # with CREATED and EXISTS
    operation: str | None = None  # with ACCEPTED


@dataclasses.dataclass(frozen=True)
class InstanceView:
    service_id: str
    plan_id: str
    parameters: JsonObject
    dashboard_url: str | None = None
    metadata: JsonObject | None = None

    def to_json(self) -> JsonObject:
        body: JsonObject = {
            "service_id": self.service_id,
            "plan_id": self.plan_id,
            "parameters": self.parameters,
        }
        if self.dashboard_url:
            body["dashboard_url"] = self.dashboard_url
        if self.metadata:
            body["metadata"] = self.metadata
        return body


@dataclasses.dataclass(frozen=True)
class LastOperation:
    state: OperationState
    description: str = ""
    instance_usable: bool | None = None
    update_repeatable: bool | None = None
    retry_after: int | None = None  # seconds; sent as Retry-After while in progress

    def to_json(self) -> JsonObject:
        body: JsonObject = {"state": self.state.value}
        if self.description:
            body["description"] = self.description
        if self.instance_usable is not None:
            body["instance_usable"] = self.instance_usable
        if self.update_repeatable is not None:
            body["update_repeatable"] = self.update_repeatable
        return body


class ServiceBroker(Protocol):
    """What the HTTP layer needs from a broker. Every method raises `osb.errors.OsbError`
    subclasses for refusals; anything else is a bug and answers 500."""

    async def catalog(self) -> Catalog: ...

    async def provision(self, request: ProvisionRequest) -> ProvisionResult: ...

    async def update(self, request: UpdateRequest) -> OperationResult: ...

    async def deprovision(self, request: DeprovisionRequest) -> OperationResult: ...

    async def fetch_instance(self, instance_id: str) -> InstanceView: ...

    async def bind(self, request: BindRequest) -> BindResult: ...

    async def unbind(self, request: UnbindRequest) -> OperationResult: ...

    async def fetch_binding(self, instance_id: str, binding_id: str) -> BindingView: ...

    async def last_operation(self, request: LastOperationRequest) -> LastOperation: ...
