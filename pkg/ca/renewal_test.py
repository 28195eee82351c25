import asyncio
import datetime
import logging

import grpc
import pytest

from pkg.aio.backoff import Backoff
from pkg.ca.client import CaUnavailable
from pkg.ca.renewal import keep_renewed
from pkg.testing.wait import eventually


class Certificate:
    """Lives `life` seconds from each obtain(); the first `failures` renewals fail."""

    def __init__(self, life: float, failures: int = 0) -> None:
        self.life = life
        self.failures = failures
        self.obtained: list[float] = []
        self.not_after: datetime.datetime | None = None

    async def obtain(self) -> None:
        if self.not_after is not None and self.failures:
            self.failures -= 1
            raise CaUnavailable(grpc.StatusCode.UNAVAILABLE, "CA away")
        self.obtained.append(asyncio.get_running_loop().time())
        self.not_after = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.life)


FAST = Backoff(minimum=0.01, maximum=0.02)


async def _run_until(cert: Certificate, renewals: int) -> None:
    task = asyncio.create_task(keep_renewed(cert, "test cert", retry=FAST, soonest=0.01))
    try:
        await eventually(lambda: len(cert.obtained) > renewals, timeout=5, what="renewals")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_renews_at_half_of_the_remaining_life():
    async def main() -> None:
        cert = Certificate(life=0.4)
        await cert.obtain()
        await _run_until(cert, renewals=2)
        gaps = [b - a for a, b in zip(cert.obtained, cert.obtained[1:], strict=False)]
        assert all(0.15 <= gap < 0.35 for gap in gaps), gaps

    asyncio.run(main())


def test_retries_with_back_off_while_the_ca_is_away(caplog):
    async def main() -> None:
        cert = Certificate(life=0.1, failures=3)
        await cert.obtain()
        await _run_until(cert, renewals=1)
        assert cert.failures == 0

    with caplog.at_level(logging.WARNING, logger="ca.renewal"):
        asyncio.run(main())
    retries = [
        r.getMessage() for r in caplog.records if "renewing test cert failed" in r.getMessage()
    ]
    assert len(retries) == 3
    assert "CA away" in retries[0]


def test_a_certificate_never_obtained_is_an_error():
    async def main() -> None:
        with pytest.raises(RuntimeError, match="obtain"):
            await keep_renewed(Certificate(life=1), "test cert")

    asyncio.run(main())
