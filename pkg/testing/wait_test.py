import pytest

from pkg.testing.aio import run_async
from pkg.testing.wait import eventually, poll


@run_async
async def test_returns_once_a_plain_or_async_condition_holds():
    calls = []

    def plain() -> bool:
        calls.append(1)
        return len(calls) >= 3

    async def awaited() -> bool:
        return True

    await eventually(plain, interval=0)
    await eventually(awaited)
    assert len(calls) == 3


@run_async
async def test_fails_after_the_timeout_saying_what_it_waited_for():
    with pytest.raises(AssertionError, match=r"the moon not reached within 0\.05s"):
        await eventually(lambda: False, timeout=0.05, what="the moon")


def test_poll_returns_the_first_truthy_answer():
    answers = iter([None, 0, "v3"])
    assert poll(lambda: next(answers), what="an answer", interval=0) == "v3"


def test_poll_fails_with_the_last_answer():
    with pytest.raises(AssertionError, match=r"the moon not reached within 0s \(last: \[\]\)"):
        poll(lambda: [], what="the moon", timeout=0.01, interval=0)
