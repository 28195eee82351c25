"""Pilot's JWKS fetches against a real HTTP server on loopback: keys, failures, refresh."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from aiohttp import web

from pilot.bootstrap.jwks import JwksResolver
from pilot.networking.jwt import UNFETCHED_JWKS

# A real RSA modulus (Pilot refuses key sets Envoy could not load).
MODULUS = json.loads(UNFETCHED_JWKS)["keys"][0]["n"]
KEYS = {"keys": [{"kty": "RSA", "kid": "one", "e": "AQAB", "n": MODULUS}]}


class Issuer:
    """A JWKS endpoint whose answer the test changes."""

    def __init__(self) -> None:
        self.body: bytes = json.dumps(KEYS).encode()
        self.status = 200
        self.delay = 0.0
        self.requests = 0

    async def handle(self, _: web.Request) -> web.Response:
        self.requests += 1
        await asyncio.sleep(self.delay)
        return web.Response(body=self.body, status=self.status, content_type="application/json")


async def _serve(issuer: Issuer) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_get("/jwks.json", issuer.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/jwks.json"


def test_new_uris_are_fetched_before_want_returns_and_unused_ones_dropped() -> None:
    async def scenario() -> None:
        issuer = Issuer()
        runner, uri = await _serve(issuer)
        try:
            resolver = JwksResolver(_ignore)
            await resolver.want({uri})
            assert json.loads(resolver.keys()[uri]) == KEYS
            await resolver.want({uri})
            assert issuer.requests == 1  # known keys are not fetched again per push
            await resolver.want(set())
            assert resolver.keys() == {}
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("status", "body", "problem"),
    [
        (500, b"{}", "HTTP 500"),
        (200, b"not json", "failed to unmarshal JWK set"),
        (200, b'{"keys": []}', "JWK set has no keys"),
        (200, b"[1, 2]", "not a JSON object"),
        (200, b'{"kty": "RSA", "n": "AQAB", "e": "AQAB"}', "at least 512 bits"),
        (200, b'{"keys": [{"kty": "RSA", "n": "!!", "e": "AQAB"}]}', "not base64url"),
        (200, b"\xff\xfe", "not UTF-8"),
    ],
)
def test_a_bad_answer_gives_no_keys_and_a_clear_error(
    status: int, body: bytes, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        issuer = Issuer()
        issuer.status, issuer.body = status, body
        runner, uri = await _serve(issuer)
        try:
            resolver = JwksResolver(_ignore)
            with caplog.at_level(logging.ERROR, logger="pilot.jwks"):
                await resolver.want({uri})
            assert resolver.keys() == {}
            assert problem in resolver.errors[uri]
            assert uri in caplog.text
            assert "its tokens are refused" in caplog.text
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_a_slow_or_absent_issuer_costs_at_most_the_timeout() -> None:
    async def scenario() -> None:
        issuer = Issuer()
        issuer.delay = 1.5
        runner, uri = await _serve(issuer)
        try:
            resolver = JwksResolver(_ignore, timeout=0.3)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await resolver.want({uri, "http://127.0.0.1:9/jwks.json"})  # discard port: refused
            assert loop.time() - started < 2.0
            assert resolver.keys() == {}
            assert set(resolver.errors) == {uri, "http://127.0.0.1:9/jwks.json"}
        finally:
            await runner.cleanup()

    asyncio.run(scenario())


def test_refresh_retries_failures_keeps_last_keys_and_reports_changes() -> None:
    async def scenario() -> None:
        issuer = Issuer()
        issuer.status = 503
        runner, uri = await _serve(issuer)
        changes: list[list[str]] = []

        async def changed(uris: list[str]) -> None:
            changes.append(uris)

        resolver = JwksResolver(changed, refresh=0.1, retry=0.05)
        task = asyncio.create_task(resolver.run())
        try:
            await resolver.want({uri})
            assert resolver.keys() == {}
            issuer.status = 200  # the issuer comes up: the retry finds its keys
            await _until(lambda: bool(changes))
            assert changes[0] == [uri]
            assert uri in resolver.keys()  # noqa: SIM118 (a method, not a dict)
            rotated = {"keys": [{**KEYS["keys"][0], "kid": "two"}]}
            issuer.body = json.dumps(rotated).encode()
            await _until(lambda: len(changes) == 2)
            assert json.loads(resolver.keys()[uri]) == rotated
            issuer.status = 500  # down again: the last keys stay
            requests = issuer.requests
            await _until(lambda: issuer.requests > requests + 1)
            assert json.loads(resolver.keys()[uri]) == rotated
            assert len(changes) == 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.cleanup()

    asyncio.run(scenario())


async def _until(condition, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _ignore(_: list[str]) -> None:
    pass


def test_a_uri_that_fails_while_the_refresh_waits_is_retried_soon() -> None:
    async def scenario() -> None:
        issuer = Issuer()
        runner, uri = await _serve(issuer)
        changes: list[list[str]] = []

        async def changed(uris: list[str]) -> None:
            changes.append(uris)

        resolver = JwksResolver(changed, refresh=3600.0, retry=0.05)
        task = asyncio.create_task(resolver.run())
        try:
            await asyncio.sleep(0.05)  # the loop waits out its hour
            issuer.status = 503
            await resolver.want({uri})
            assert resolver.keys() == {}
            issuer.status = 200
            await _until(lambda: bool(changes))
            assert uri in resolver.keys()  # noqa: SIM118 (a method, not a dict)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await runner.cleanup()

    asyncio.run(scenario())
