"""kubectl's table layout over the server's Table, and objects as the server sent them."""

from __future__ import annotations

from istioctl.resources import printing
from pkg.config.kinds import ALL


def server_table(*rows: tuple[str, list[object]]) -> dict[str, object]:
    """A meta.k8s.io/v1 Table as the config store (or Kubernetes) sends it."""
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "columnDefinitions": [
            {"name": "Name", "type": "string", "format": "name", "priority": 0},
            {"name": "Hosts", "type": "string", "priority": 0},
            {"name": "Location", "type": "string", "priority": 0},
            {"name": "Workload Selector", "type": "string", "priority": 1},
            {"name": "Age", "type": "date", "priority": 0},
        ],
        "rows": [
            {"cells": cells, "object": {"metadata": {"name": cells[0], "namespace": namespace}}}
            for namespace, cells in rows
        ],
    }


def test_the_servers_table_as_kubectl_prints_it():
    first = server_table(
        ("egress", ["httpbin", '["httpbin.org"]', "MESH_EXTERNAL", "app=a", "60m"])
    )
    second = server_table(("default", ["local", '["a.local"]', None, None, "5s"]))
    # Column names in capitals, priority 0 only, empty for a field the object does not set.
    assert printing.table([first, second], all_namespaces=True) == (
        "NAMESPACE   NAME      HOSTS             LOCATION        AGE\n"
        'egress      httpbin   ["httpbin.org"]   MESH_EXTERNAL   60m\n'
        'default     local     ["a.local"]                       5s\n'
    )
    assert printing.table([second], all_namespaces=False) == (
        'NAME    HOSTS         LOCATION   AGE\nlocal   ["a.local"]              5s\n'
    )
    assert printing.table([server_table()], all_namespaces=False) == ""
    assert printing.table([], all_namespaces=False) == ""


def test_objects_are_shown_without_managed_fields():
    obj = {
        "apiVersion": "networking.istio.io/v1",
        "kind": "DestinationRule",
        "metadata": {"name": "r", "managedFields": [{"manager": "kubectl"}]},
        "spec": {"host": "reviews"},
    }
    assert printing.as_yaml([obj]) == (
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata:\n  name: r\n"
        "spec:\n  host: reviews\n"
    )
    assert "managedFields" not in printing.as_json([obj], single=True)
    assert obj["metadata"]["managedFields"]  # the answer itself is left as it came


def test_qualified_name():
    assert printing.qualified_name(ALL.by_name("gw"), "gw") == "gateway.networking.istio.io/gw"
    assert printing.qualified_name(ALL.by_name("rule"), "r") == "rule.config.istio.io/r"
