"""Debouncing on explicit (fake) times: quiet period, maximum delay, merging."""

from __future__ import annotations

import pytest

from pilot.xds.debounce import Debouncer
from pilot.xds.proxy import parse_node
from pilot.xds.testing import node

WEB = parse_node(node("sidecar~127.0.0.1~web.default~default.svc.cluster.local"))
DB = parse_node(node("sidecar~127.0.0.2~db.data~data.svc.cluster.local"))


def test_nothing_pending_has_no_deadline():
    debouncer = Debouncer(0.1, 1.0)
    assert debouncer.deadline() is None
    assert debouncer.take(100.0) is None


def test_fires_after_the_quiet_period():
    debouncer = Debouncer(0.1, 1.0)
    debouncer.add(10.0, "a", None, True)
    assert debouncer.deadline() == pytest.approx(10.1)
    assert debouncer.take(10.05) is None
    push = debouncer.take(10.1)
    assert push is not None
    assert push.reasons == ["a"]
    assert debouncer.deadline() is None


def test_each_change_restarts_the_quiet_period_up_to_the_max():
    debouncer = Debouncer(0.1, 1.0)
    for step in range(20):  # a change every 0.05 s: never quiet for 0.1 s
        now = 10.0 + step * 0.05
        debouncer.add(now, f"change {step}", None, True)
        if now < 11.0:
            assert debouncer.deadline() == pytest.approx(min(now + 0.1, 11.0))
    push = debouncer.take(11.0)
    assert push is not None
    assert push.reasons == [f"change {step}" for step in range(20)]


def test_merged_affects_are_or_ed_and_full_wins():
    debouncer = Debouncer(0.0, 1.0)
    debouncer.add(1.0, "web", lambda p: p.pod == "web", False)
    debouncer.add(1.0, "db", lambda p: p.namespace == "data", True)
    push = debouncer.take(1.0)
    assert push is not None
    assert push.full
    assert push.applies_to(WEB)
    assert push.applies_to(DB)
    debouncer.add(2.0, "web only", lambda p: p.pod == "web", False)
    push = debouncer.take(2.0)
    assert push is not None
    assert not push.full
    assert push.applies_to(WEB)
    assert not push.applies_to(DB)


def test_one_push_for_everyone_overrides_filters():
    debouncer = Debouncer(0.0, 1.0)
    debouncer.add(1.0, "web", lambda p: p.pod == "web", True)
    debouncer.add(1.0, "global", None, True)
    debouncer.add(1.0, "web again", lambda p: p.pod == "web", True)
    push = debouncer.take(1.0)
    assert push is not None
    assert push.affects is None
    assert push.applies_to(DB)


def test_negative_delays_are_refused():
    with pytest.raises(ValueError, match="debounce delays must not be negative"):
        Debouncer(-1, 1)
