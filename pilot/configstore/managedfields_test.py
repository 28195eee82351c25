"""managedFields bookkeeping and server-side apply, without HTTP."""

from __future__ import annotations

from typing import Any

import pytest

from pilot.configstore import apply, managedfields, status
from pilot.configstore.managedfields import APPLY, UPDATE, Manager
from pkg.config.kinds import ALL

VS = ALL.by_name("vs")
V1 = "networking.istio.io/v1"


def obj(spec: dict[str, Any], labels: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    metadata = {"name": "reviews", "namespace": "default", "uid": "u", **meta}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": V1, "kind": "VirtualService", "metadata": metadata, "spec": spec}


def test_fields_v1_round_trip_and_system_fields_are_no_ones():
    live = obj({"hosts": ["r"], "http": [{"route": []}]}, {"app": "r"}, resourceVersion="3")
    every = managedfields.all_paths(live)
    assert every == {
        ("metadata", "labels"),
        ("metadata", "labels", "app"),
        ("spec",),
        ("spec", "hosts"),
        ("spec", "http"),
    }
    encoded = managedfields.encode(every)
    assert encoded == {
        "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
        "f:spec": {".": {}, "f:hosts": {}, "f:http": {}},
    }
    assert managedfields.decode(encoded, "x") == every
    assert managedfields.leaves(live) == every - {("spec",), ("metadata", "labels")}
    with pytest.raises(managedfields.ManagedFieldsError, match="cannot read key 'x:y'"):
        managedfields.decode({"x:y": {}}, "metadata.managedFields[0]")


def test_an_update_takes_what_it_changed_from_everyone_else():
    before = obj({"hosts": ["r"], "gateways": ["mesh"]})
    creator = managedfields.record_update([], {}, before, manager="kubectl-create", api_version=V1)
    assert [(m.manager, m.operation, m.fields) for m in creator] == [
        ("kubectl-create", UPDATE, {("spec",), ("spec", "hosts"), ("spec", "gateways")})
    ]
    after = obj({"hosts": ["r2"]})
    entries = managedfields.record_update(
        creator, before, after, manager="kubectl-edit", api_version=V1
    )
    owned = {m.manager: m.fields for m in entries}
    assert owned == {"kubectl-create": {("spec",)}, "kubectl-edit": {("spec", "hosts")}}
    # The same manager at another version is another entry, as on a real server.
    other = managedfields.record_update(
        entries, after, obj({"hosts": ["r3"]}), manager="kubectl-edit", api_version="x/v1beta1"
    )
    assert sorted((m.manager, m.api_version) for m in other) == [
        ("kubectl-create", V1),
        ("kubectl-edit", "x/v1beta1"),
    ]


def entry(name: str, operation: str, *paths: tuple[str, ...]) -> dict[str, Any]:
    return Manager(name, operation, V1, "2024-01-01T00:00:00Z", frozenset(paths)).to_dict()


def applied(live: dict[str, Any], config: dict[str, Any], manager: str, force: bool = False):
    plan = apply.plan(live, config, manager=manager, api_version=V1)
    return plan.merged, apply.reconcile(live, plan.merged, plan, force=force, schema=VS)


def test_apply_owns_what_it_applies_and_prunes_what_it_dropped():
    live = obj({"hosts": ["r"], "gateways": ["mesh"], "exportTo": ["."]})
    live["metadata"]["managedFields"] = [
        entry("alice", APPLY, ("spec", "hosts"), ("spec", "gateways")),
        entry("bob", APPLY, ("spec", "exportTo"), ("spec", "hosts")),
    ]
    merged, managers = applied(live, obj({"hosts": ["r"]}), "alice")
    # gateways: alice's alone, dropped from her config, so removed; hosts: still hers and bob's.
    assert merged["spec"] == {"hosts": ["r"], "exportTo": ["."]}
    assert {m.manager: m.fields for m in managers} == {
        "alice": {("spec", "hosts")},
        "bob": {("spec", "exportTo"), ("spec", "hosts")},
    }
    # Bob drops hosts: alice still owns them, so they stay.
    merged, _ = applied(live, obj({"exportTo": ["."]}), "bob")
    assert merged["spec"]["hosts"] == ["r"]


def test_conflicts_are_409_in_kubernetes_words():
    live = obj({"hosts": ["r"], "gateways": ["mesh"]}, {"app": "r"})
    live["metadata"]["managedFields"] = [
        entry("alice", APPLY, ("spec", "hosts")),
        entry("kubectl-edit", UPDATE, ("spec", "gateways"), ("metadata", "labels", "app")),
    ]
    change = obj({"hosts": ["x"], "gateways": ["gw"]}, {"app": "x"})
    with pytest.raises(status.StatusError) as refused:
        applied(live, change, "bob")
    assert (refused.value.code, refused.value.reason) == (409, "Conflict")
    assert refused.value.message == (
        'Apply failed with 3 conflicts: conflicts with "alice":\n'
        "- .spec.hosts\n"
        'conflicts with "kubectl-edit" using networking.istio.io/v1:\n'
        "- .metadata.labels.app\n"
        "- .spec.gateways"
    )
    assert {c["field"] for c in refused.value.details["causes"]} == {
        ".spec.hosts",
        ".spec.gateways",
        ".metadata.labels.app",
    }
    # The same values are no conflict: the fields are shared.
    _, shared = applied(live, obj({"hosts": ["r"]}), "bob")
    assert {m.manager: m.fields for m in shared}["alice"] == {("spec", "hosts")}
    merged, forced = applied(live, change, "bob", force=True)
    assert merged["spec"] == {"hosts": ["x"], "gateways": ["gw"]}
    assert {m.manager for m in forced} == {"bob"}  # the others lost everything they had


def test_an_applied_configuration_must_say_what_it_is():
    with pytest.raises(status.StatusError, match="must set apiVersion and kind"):
        apply.check_config(VS, {"spec": {}})
    with pytest.raises(status.StatusError, match=r"metadata\.managedFields must be nil"):
        apply.check_config(VS, {**obj({}), "metadata": {"managedFields": []}})
    assert apply.check_config(VS, obj({"hosts": None, "gateways": ["g"]}))["spec"] == {
        "gateways": ["g"]
    }
