import random

from pkg.aio.backoff import Backoff


def test_delays_double_up_to_the_maximum_and_reset_starts_over():
    backoff = Backoff(minimum=0.5, maximum=3.0)
    assert [backoff.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_jitter_only_shortens_a_delay_and_by_at_most_its_share():
    backoff = Backoff(minimum=1.0, maximum=1.0, jitter=0.2, rng=random.Random(7))
    delays = [backoff.next_delay() for _ in range(200)]
    assert all(0.8 <= d <= 1.0 for d in delays)
    assert len(set(delays)) > 100  # really spread, not one shortened value
