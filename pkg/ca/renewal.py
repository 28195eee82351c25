"""A certificate kept fresh: renewed at half of its remaining life, as istiod renews its own.

While the CA is away the renewal is retried with back-off; the certificate in hand stays in
use meanwhile, so a CA outage shorter than half a certificate's life is never seen.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
from typing import Protocol

from pkg.aio.backoff import Backoff
from pkg.ca.client import CaError

log = logging.getLogger("ca.renewal")

RETRY = Backoff(minimum=0.5, maximum=30.0)


class Renewable(Protocol):
    @property
    def not_after(self) -> datetime.datetime | None: ...

    async def obtain(self) -> None: ...


async def keep_renewed(
    certificate: Renewable, what: str, *, retry: Backoff = RETRY, soonest: float = 1.0
) -> None:
    """Renew `certificate` (obtained once already) until cancelled.

    `what` names it in the log; `soonest` is the shortest wait before a renewal, so a
    certificate that is already past half-life is not renewed in a tight loop."""
    backoff = dataclasses.replace(retry)
    while True:
        if certificate.not_after is None:
            raise RuntimeError(f"{what}: obtain() the certificate before keeping it renewed")
        left = (certificate.not_after - datetime.datetime.now(datetime.UTC)).total_seconds()
        await asyncio.sleep(max(left / 2, soonest))
        while True:
            try:
                await certificate.obtain()
                backoff.reset()
                break
            except (CaError, OSError) as error:
                delay = backoff.next_delay()
                log.warning("renewing %s failed (%s); retrying in %.1fs", what, error, delay)
                await asyncio.sleep(delay)
