"""Pilot fetches the key sets of RequestAuthentications' `jwksUri`s and inlines them.

istiod's default (PILOT_JWT_ENABLE_REMOTE_JWKS=false): Envoy gets the keys in its config,
so no proxy needs a route to the issuer and a slow issuer slows no request. New URIs are
fetched before the push that first needs them (bounded by `timeout`); every URI is fetched
again each `refresh` (Istio: 20 min), and one that failed each `retry` until it answers.
A failed fetch keeps the last keys that worked; with none, the generator puts in a key
nobody holds (pilot/networking/jwt.py), so its tokens are refused, never trusted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Collection

import aiohttp

from pkg.config.validation.authentication import jwks_problem

log = logging.getLogger("pilot.jwks")

# A key set is a few KB; more than this is not one.
MAX_BYTES = 1 << 20


class JwksError(Exception):
    pass


class JwksResolver:
    def __init__(
        self,
        on_change: Callable[[list[str]], Awaitable[None]],
        *,
        timeout: float = 5.0,
        refresh: float = 1200.0,
        retry: float = 5.0,
    ) -> None:
        self._on_change = on_change
        self._timeout = timeout
        self._refresh = refresh
        self._retry = retry
        self._keys: dict[str, str] = {}
        self._wanted: frozenset[str] = frozenset()
        self._wake = asyncio.Event()
        self.errors: dict[str, str] = {}  # the last failure of each URI that has no keys now

    def keys(self) -> dict[str, str]:
        """The key sets of the URIs in use, by URI (a copy: push contexts keep it)."""
        return {uri: keys for uri, keys in self._keys.items() if uri in self._wanted}

    async def want(self, uris: Collection[str]) -> None:
        """The URIs config names now: fetch those never fetched before returning."""
        self._wanted = frozenset(uris)
        new = [uri for uri in sorted(self._wanted) if uri not in self._keys]
        await asyncio.gather(*(self._fetch(uri) for uri in new))
        # A URI that failed is retried soon, not after the rest of a long refresh wait.
        self._wake.set()

    async def run(self) -> None:
        """Refetch every URI in use, forever; tell `on_change` which URIs' keys changed."""
        while True:
            failing = any(uri not in self._keys for uri in self._wanted)
            try:
                await asyncio.wait_for(self._wake.wait(), self._retry if failing else self._refresh)
            except TimeoutError:
                pass
            else:
                self._wake.clear()
                continue  # what to wait for may have changed: wait again, from now
            wanted = sorted(self._wanted)
            changed = await asyncio.gather(*(self._fetch(uri) for uri in wanted))
            moved = [uri for uri, did in zip(wanted, changed, strict=True) if did]
            if moved:
                await self._on_change(moved)

    async def _fetch(self, uri: str) -> bool:
        """Fetch one key set; True if the keys held for `uri` changed. Never raises."""
        try:
            keys = await fetch_jwks(uri, self._timeout)
        except (JwksError, aiohttp.ClientError, TimeoutError, OSError) as error:
            self.errors[uri] = str(error) or type(error).__name__
            held = (
                "keeping the last keys fetched" if uri in self._keys else "its tokens are refused"
            )
            log.error("jwks: fetching %s failed (%s); %s", uri, self.errors[uri], held)
            return False
        self.errors.pop(uri, None)
        if self._keys.get(uri) == keys:
            return False
        self._keys[uri] = keys
        log.info("jwks: fetched %s", uri)
        return True


async def fetch_jwks(uri: str, timeout: float) -> str:
    """The key set at `uri`, checked to be a JWK set Envoy can read."""
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with (
        aiohttp.ClientSession(timeout=client_timeout) as session,
        session.get(uri, allow_redirects=True) as response,
    ):
        if response.status != 200:
            raise JwksError(f"HTTP {response.status}")
        body = await response.content.read(MAX_BYTES + 1)
    if len(body) > MAX_BYTES:
        raise JwksError(f"larger than {MAX_BYTES} bytes")
    try:
        text = body.decode()
    except UnicodeDecodeError as error:
        raise JwksError(f"not UTF-8: {error}") from None
    # Keys Envoy cannot load would make it refuse the whole listener: check them as the
    # store checks inline keys. A single JWK is valid inline, not as a jwksUri's answer.
    problem = jwks_problem(text)
    if problem is None and '"keys"' not in text:
        problem = 'not a JWK set: no "keys"'
    if problem:
        raise JwksError(problem)
    return text
