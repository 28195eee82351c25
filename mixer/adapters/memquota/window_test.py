"""The rolling window never over-grants in any window, and gives capacity back in time."""

from __future__ import annotations

import hypothesis
from hypothesis import strategies as st

from mixer.adapters.memquota.window import RollingWindow


def test_capacity_returns_after_the_window_and_one_bucket():
    window = RollingWindow(5, 1.0)
    window.alloc(5, 10.00)
    assert window.available(10.00) == 0
    assert window.available(10.99) == 0
    # The grant sits in bucket [10.0, 10.1): it has left the window once 10.1 <= now - 1.
    assert window.available(11.05) == 0
    assert window.available(11.1) == 5
    assert window.is_idle(11.1)


def test_buckets_leave_one_by_one():
    window = RollingWindow(10, 1.0)
    window.alloc(3, 0.05)
    window.alloc(4, 0.55)
    assert window.in_use(0.9) == 7
    assert window.in_use(1.1) == 4
    assert window.in_use(1.6) == 0


@hypothesis.settings(max_examples=200, deadline=None, database=None)
@hypothesis.given(
    max_amount=st.integers(1, 20),
    steps=st.lists(st.tuples(st.floats(0, 0.7), st.integers(1, 8)), max_size=60),
)
def test_never_more_than_max_amount_in_any_window(max_amount: int, steps):
    length = 1.0
    window = RollingWindow(max_amount, length)
    now = 100.0
    grants: list[tuple[float, int]] = []
    for delay, amount in steps:
        now += delay
        granted = min(amount, window.available(now))
        if granted:
            window.alloc(granted, now)
            grants.append((now, granted))
        # Every window of one length ending at a grant holds at most max_amount.
        in_window = sum(n for t, n in grants if now - length < t <= now)
        assert in_window <= max_amount
        # Everything granted more than a window and a bucket ago has been given back.
        recent = sum(n for t, n in grants if t > now - length - window.bucket)
        assert window.in_use(now) <= recent
