"""Table cells and ages, worded as the API server words them for a CRD's printer columns."""

from __future__ import annotations

import datetime

import pytest

from pilot.configstore import table
from pkg.config.kinds import ALL, PrinterColumn


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (5 * 60 + 3, "5m3s"),
        (42 * 60, "42m"),
        (3 * 3600 + 12 * 60, "3h12m"),
        (10 * 3600, "10h"),
        (2 * 86400 + 3 * 3600, "2d3h"),
        (30 * 86400, "30d"),
        (400 * 86400, "400d"),
        (3 * 365 * 86400 + 20 * 86400, "3y20d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_human_durations(seconds: int, shown: str):
    assert table.human_duration(seconds) == shown


def test_cells_by_column_type():
    now = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=datetime.UTC)
    assert table.age("2024-01-01T11:55:00Z", now) == "5m"
    assert table.age("yesterday", now) == "<invalid>"
    obj = {
        "metadata": {"name": "r", "creationTimestamp": "2024-01-01T11:00:00Z"},
        "spec": {"hosts": ["a", "b"], "host": "h", "ports": [{"number": 80}], "on": True},
    }
    assert table.cell(obj, PrinterColumn("Hosts", "string", ".spec.hosts")) == '["a","b"]'
    assert table.cell(obj, PrinterColumn("Host", "string", ".spec.host")) == "h"
    assert table.cell(obj, PrinterColumn("Port", "integer", ".spec.ports[0].number")) == 80
    assert table.cell(obj, PrinterColumn("On", "boolean", ".spec.on")) is True
    assert table.cell(obj, PrinterColumn("Gateways", "string", ".spec.gateways")) is None
    assert table.cell(obj, PrinterColumn("Port", "integer", ".spec.ports[3].number")) is None


def test_a_kind_without_columns_shows_its_age():
    sidecar = ALL.by_name("sidecar")
    view = table.View("Table", "v1", "None")
    obj = {"metadata": {"name": "default", "creationTimestamp": "2024-01-01T00:00:00Z"}}
    out = table.table(sidecar, [obj], view, "7")
    assert [c["name"] for c in out["columnDefinitions"]] == ["Name", "Age"]
    assert out["rows"][0]["cells"][0] == "default"
    assert "object" not in out["rows"][0]
    assert out["metadata"] == {"resourceVersion": "7"}
