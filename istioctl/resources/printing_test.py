"""kubectl's ages and table layout."""

from __future__ import annotations

import datetime

import pytest

from istioctl.resources import printing
from pkg.config import loader
from pkg.config.kinds import ALL

NOW = datetime.datetime(2024, 5, 1, 12, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (179 * 60, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60 * 5, "3h5m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (49 * 3600, "2d1h"),
        (8 * 86400, "8d"),
        (729 * 86400, "729d"),
        (730 * 86400, "2y"),
        (731 * 86400, "2y1d"),
        (8 * 365 * 86400, "8y"),
    ],
)
def test_human_duration(seconds, shown):
    assert printing.human_duration(seconds) == shown


def test_age_of_a_timestamp():
    assert printing.age("2024-05-01T11:58:30Z", NOW) == "90s"
    assert printing.age("", NOW) == "<unknown>"
    assert printing.age("yesterday", NOW) == "<unknown>"


def test_table_columns_follow_the_kind():
    resources = loader.load_text(
        """
apiVersion: networking.istio.io/v1alpha3
kind: ServiceEntry
metadata: {name: httpbin, namespace: egress, creationTimestamp: "2024-05-01T11:00:00Z"}
spec: {hosts: [httpbin.org], location: MESH_EXTERNAL, resolution: DNS,
       ports: [{number: 80, name: http, protocol: HTTP}]}
"""
    )
    assert printing.table(resources, all_namespaces=True, now=NOW) == (
        "NAMESPACE   NAME      HOSTS             LOCATION        RESOLUTION   AGE\n"
        'egress      httpbin   ["httpbin.org"]   MESH_EXTERNAL   DNS          60m\n'
    )
    assert printing.table([], all_namespaces=False, now=NOW) == ""


def test_qualified_name():
    assert printing.qualified_name(ALL.by_name("gw"), "gw") == "gateway.networking.istio.io/gw"
    assert printing.qualified_name(ALL.by_name("rule"), "r") == "rule.config.istio.io/r"
