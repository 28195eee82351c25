"""Conformance of the broker to the official OSB OpenAPI description, with schemathesis.

The official file (`osb-openapi-v2.17.yaml`, beside the project's DESIGN.md) is loaded as
it is, and then an overlay is laid on it in memory, for two reasons written down here:

- The file omits responses its own spec text makes mandatory ("If the spec and this
  document conflict, the spec is the authority", its header says): 401 on every operation
  (spec: "MUST return a 401 Unauthorized response if the authentication fails"), 412 on every
  operation (spec: API Version Header), and 422 ConcurrencyError on fetching an instance
  that is being updated (spec: Fetching a Service Instance).
- It declares no OpenAPI links, so schemathesis' stateful phase could not chain operations;
  the overlay adds the obvious ones (provision -> fetch, update, bind, poll, deprovision;
  bind -> fetch, poll, unbind), passing the ids each request used.

The run's configuration makes generated data mean something to a broker: service and plan
ids drawn from the catalog, a few instance and binding ids so that requests meet existing
resources, well-formed originating identities, no undeclared query parameters in negative
cases (OSB ignores what it does not know); and it tells two checks what OSB answers where
their generic expectations differ (missing_required_header: 412 for the version header;
positive_data_acceptance: the codes the spec prescribes for well-formed requests about
resources in another state, per operation).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import pathlib
from typing import Any

import yaml

SPEC_NAME = "osb-openapi-v2.17.yaml"
_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_INSTANCE = "/v2/service_instances/{instance_id}"
_BINDING = _INSTANCE + "/service_bindings/{binding_id}"


def find_spec(start: pathlib.Path | None = None) -> pathlib.Path:
    """The official file: $OSB_OPENAPI, else shared/reference/ in a folder above the checkout."""
    if os.environ.get("OSB_OPENAPI"):
        return pathlib.Path(os.environ["OSB_OPENAPI"])
    here = (start or pathlib.Path(__file__)).resolve()
    for folder in here.parents:
        candidate = folder / "shared" / "reference" / SPEC_NAME
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{SPEC_NAME} not found in shared/reference/ above {here}; set OSB_OPENAPI to its path"
    )


def overlay(spec: dict[str, Any]) -> dict[str, Any]:
    """The official description plus the responses its spec text requires and links."""
    spec = copy.deepcopy(spec)
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            responses = operation["responses"]
            for code, what in (("401", "Unauthorized"), ("412", "Precondition Failed")):
                responses.setdefault(code, {"description": what, **_ERROR})
            if path == _INSTANCE and method == "get":
                responses.setdefault("422", {"description": "Unprocessable Entity", **_ERROR})
    _links(spec)
    return spec


def _links(spec: dict[str, Any]) -> None:
    instance = {"instance_id": "$request.path.instance_id"}
    ids = {"service_id": "$request.body#/service_id", "plan_id": "$request.body#/plan_id"}
    binding = {**instance, "binding_id": "$request.path.binding_id"}
    provision = {
        "FetchInstance": {"operationId": "serviceInstance.get", "parameters": instance},
        "PollInstance": {
            "operationId": "serviceInstance.lastOperation.get",
            "parameters": instance,
        },
        "UpdateInstance": {
            "operationId": "serviceInstance.update",
            "parameters": instance,
            "requestBody": {"service_id": "$request.body#/service_id"},
        },
        "Bind": {
            "operationId": "serviceBinding.binding",
            "parameters": instance,
            "requestBody": {
                "service_id": "$request.body#/service_id",
                "plan_id": "$request.body#/plan_id",
            },
        },
        "Deprovision": {
            "operationId": "serviceInstance.deprovision",
            "parameters": {**instance, **ids},
        },
    }
    bind = {
        "FetchBinding": {"operationId": "serviceBinding.get", "parameters": binding},
        "PollBinding": {"operationId": "serviceBinding.lastOperation.get", "parameters": binding},
        "Unbind": {"operationId": "serviceBinding.unbinding", "parameters": {**binding, **ids}},
    }
    for path, links in ((_INSTANCE, provision), (_BINDING, bind)):
        for code in ("200", "201", "202"):
            spec["paths"][path]["put"]["responses"][code]["links"] = copy.deepcopy(links)


def originating_identities() -> list[str]:
    return [
        f"{platform} {base64.b64encode(json.dumps(value).encode()).decode()}"
        for platform, value in (
            ("cloudfoundry", {"user_id": "683ea748-3092-4ff4-b656-39cacc4d5360"}),
            ("kubernetes", {"username": "admin", "uid": "c2dde242", "groups": ["admin"]}),
        )
    ]


# What OSB answers to well-formed requests that meet resources in another state (the spec's
# response tables), where positive_data_acceptance would expect 2xx/404/409.
_STATEFUL_ANSWERS = {
    "serviceInstance.provision": ["400", "422"],  # not a plan of the service; AsyncRequired
    "serviceInstance.update": ["400", "422"],  # no such plan; no such instance, AsyncRequired
    "serviceInstance.deprovision": ["400", "410", "422"],  # ids not the instance's; Gone; busy
    "serviceInstance.get": ["422"],  # ConcurrencyError while being updated
    "serviceInstance.lastOperation.get": ["400", "410"],  # not its operation; deprovisioned
    "serviceBinding.binding": ["400", "422"],  # ids not the instance's; no such instance
    "serviceBinding.unbinding": ["400", "410", "422"],
    "serviceBinding.lastOperation.get": ["400", "410"],
}
_DEFAULT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]


def config(
    *,
    url: str,
    username: str,
    password: str,
    service_ids: list[str],
    plan_ids: list[str],
    hooks: str | None = None,
) -> str:
    """schemathesis.toml for a run against the broker at `url`."""
    lines = [
        f"base-url = {_toml(url)}",
        "workers = 1",
        "[auth.basic]",
        f"username = {_toml(username)}",
        f"password = {_toml(password)}",
        "[headers]",
        '"X-Broker-API-Version" = "2.17"',
        "[dictionaries.service_ids]",
        f"values = {_toml(service_ids)}",
        "[dictionaries.plan_ids]",
        f"values = {_toml(plan_ids)}",
        "[dictionaries.instance_ids]",
        'values = ["conformance-1", "conformance-2"]',
        "[dictionaries.binding_ids]",
        'values = ["binding-1", "binding-2"]',
        "[dictionaries.identities]",
        f"values = {_toml(originating_identities())}",
        "[parameters]",
        '"body.service_id" = { dictionary = "service_ids", probability = 0.9 }',
        '"body.plan_id" = { dictionary = "plan_ids", probability = 0.9 }',
        '"query.service_id" = { dictionary = "service_ids", probability = 0.9 }',
        '"query.plan_id" = { dictionary = "plan_ids", probability = 0.9 }',
        '"path.instance_id" = { dictionary = "instance_ids", probability = 0.7 }',
        '"path.binding_id" = { dictionary = "binding_ids", probability = 0.7 }',
        '"header.X-Broker-API-Originating-Identity" = '
        '{ dictionary = "identities", probability = 0.9 }',
        # Negative cases may not add undeclared query parameters and expect a refusal: OSB
        # brokers ignore what they do not know (spec: Vendor Extension Fields).
        "[generation]",
        "allow-extra-parameters = false",
        "[checks.missing_required_header]",
        f"expected-statuses = {_toml(['400', '401', '403', '406', '412', '415', '422'])}",
    ]
    if hooks:
        lines.insert(0, f"hooks = {_toml(hooks)}")
    for operation_id, extra in _STATEFUL_ANSWERS.items():
        lines += [
            "[[operations]]",
            f"include-operation-id = {_toml(operation_id)}",
            "[operations.checks.positive_data_acceptance]",
            f"expected-statuses = {_toml(_DEFAULT_ACCEPTED + extra)}",
        ]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    # JSON's strings, numbers and arrays of them are TOML's too.
    return json.dumps(value)


def write_spec(directory: pathlib.Path) -> pathlib.Path:
    official = yaml.safe_load(find_spec().read_text())
    path = directory / "osb-openapi-v2.17-with-overlay.json"
    path.write_text(json.dumps(overlay(official), indent=1))
    return path
