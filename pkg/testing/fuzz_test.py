from hypothesis import given
from hypothesis import strategies as st

from pkg.testing.fuzz import LONG, bounded


def test_make_test_runs_the_same_few_examples(monkeypatch):
    monkeypatch.delenv("HYPOTHESIS_PROFILE", raising=False)

    def examples() -> list[int]:
        seen: list[int] = []

        @bounded(7)
        @given(st.integers())
        def target(value: int) -> None:
            seen.append(value)

        target()
        return seen

    first = examples()
    assert first == examples()
    assert 0 < len(first) <= 7


def test_the_long_run_asks_for_many_random_examples(monkeypatch):
    monkeypatch.setenv("HYPOTHESIS_PROFILE", LONG)
    long = bounded(7, long=500)
    assert (long.max_examples, long.derandomize) == (500, False)
