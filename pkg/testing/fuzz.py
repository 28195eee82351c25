"""Bounded fuzzing with hypothesis: a few fixed examples in `make test`, many random ones asked for.

Every fuzz target decorates its tests with `bounded(n)`: n derandomized examples (the same
ones each run, no example database), or with `HYPOTHESIS_PROFILE=fuzz-long` in the environment
`long` random ones, the long run each target documents. Settings per test, not a global
profile: several fuzz modules in one pytest process would otherwise each load their own, and
the last one imported would bound them all.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

LONG = "fuzz-long"


def bounded(examples: int, long: int = 20_000) -> settings:
    long_run = os.environ.get("HYPOTHESIS_PROFILE") == LONG
    return settings(
        max_examples=long if long_run else examples,
        derandomize=not long_run,
        deadline=None,  # a slow example is not a failure: only an exception is
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
