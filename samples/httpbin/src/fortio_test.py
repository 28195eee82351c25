"""fortio: counts by response code, connections kept, the http_proxy it must go through,
its REST API, and the runs it refuses."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
from typing import Any

import pytest
from aiohttp import test_utils, web

from samples.httpbin.src import fortio


class Backend:
    """Answers 503 to every third request; records peers, paths, headers and concurrency."""

    def __init__(self) -> None:
        self.count = 0
        self.active = 0
        self.most_active = 0
        self.peers: collections.Counter[tuple[str, int]] = collections.Counter()
        self.targets: list[str] = []
        self.headers: list[str] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.count += 1
        number = self.count
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport else ("?", 0)
        self.peers[peer] += 1
        self.targets.append(request.raw_path)
        self.headers.append(request.headers.get("x-key", ""))
        try:
            await asyncio.sleep(0.01)
            return web.Response(status=503 if number % 3 == 0 else 200)
        finally:
            self.active -= 1

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


def serving(scenario: Any) -> tuple[Backend, Any]:
    backend = Backend()

    async def main() -> Any:
        async with test_utils.TestServer(backend.app(), host="127.0.0.1") as server:
            return await scenario(f"http://127.0.0.1:{server.port}")

    return backend, asyncio.run(main())


def test_load_counts_codes_over_its_connections() -> None:
    async def scenario(base: str) -> fortio.Result:
        options = fortio.LoadOptions(
            f"{base}/get", connections=3, qps=0, requests=30, headers=(("x-key", "k1"),)
        )
        return await fortio.run_load(options)

    backend, result = serving(scenario)
    assert result.codes == {200: 20, 503: 10}
    assert backend.count == 30
    assert len(backend.peers) == 3  # one kept-alive connection per -c
    assert set(backend.peers.values()) == {10}
    assert backend.most_active == 3
    assert set(backend.headers) == {"k1"}
    out = result.as_json()
    assert out["RetCodes"] == {"200": 20, "503": 10}
    assert out["DurationHistogram"]["Count"] == 30
    assert "Code 503 : 10 (33.3 %)" in result.report()


def test_qps_paces_the_run_and_duration_ends_it() -> None:
    async def scenario(base: str) -> fortio.Result:
        options = fortio.LoadOptions(f"{base}/get", connections=2, qps=20, duration=0.5)
        return await fortio.run_load(options)

    _, result = serving(scenario)
    assert 6 <= sum(result.codes.values()) <= 14  # 20 qps for half a second
    assert 0.45 <= result.elapsed < 1.5


def test_requests_go_through_http_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sidecar contract: the whole URL goes to the proxy, which alone reaches the host."""

    async def scenario(base: str) -> fortio.Result:
        monkeypatch.setenv("http_proxy", base)
        options = fortio.LoadOptions("http://httpbin:8000/get", connections=1, qps=0, requests=2)
        return await fortio.run_load(options)

    backend, result = serving(scenario)
    assert sum(result.codes.values()) == 2
    assert backend.targets == ["http://httpbin:8000/get"] * 2


def test_a_request_without_an_answer_counts_as_minus_one() -> None:
    options = fortio.LoadOptions("http://127.0.0.1:9/", connections=1, qps=0, requests=2)
    assert asyncio.run(fortio.run_load(options)).codes == {fortio.ERROR_CODE: 2}


def test_the_rest_api_runs_the_load_and_answers_fortios_json() -> None:
    async def scenario(base: str) -> tuple[int, Any, int, Any]:
        async with test_utils.TestClient(test_utils.TestServer(fortio.build_app())) as client:
            ran = await client.get(
                "/fortio/rest/run",
                params=[
                    ("url", f"{base}/x"),
                    ("c", "2"),
                    ("qps", "0"),
                    ("n", "6"),
                    ("H", "x-key: 7"),
                ],
            )
            bad = await client.get("/fortio/rest/run", params={"url": "httpbin", "n": "1"})
            return ran.status, await ran.json(), bad.status, await bad.json()

    backend, (status, body, bad_status, bad) = serving(scenario)
    assert status == 200
    assert body["RetCodes"] == {"200": 4, "503": 2}
    assert body["NumThreads"] == 2
    assert set(backend.headers) == {"7"}
    assert bad_status == 400
    assert "is not an http:// or https:// URL" in bad["Error"]


@pytest.mark.parametrize(
    ("query", "headers", "error"),
    [
        ({"url": "http://h/", "c": "0"}, [], "c: 0 connections"),
        ({"url": "http://h/", "c": "x"}, [], "invalid literal"),
        ({"url": "http://h/", "qps": "-1"}, [], "qps: -1.0 is negative"),
        ({"url": "http://h/", "n": "1000000"}, [], "n: 1000000 requests"),
        ({"url": "http://h/", "t": "5"}, [], "t: '5' is not a duration"),
        ({"url": "http://h/"}, ["novalue"], "H: 'novalue' is not `name: value`"),
    ],
)
def test_bad_runs_are_refused(query: dict[str, str], headers: list[str], error: str) -> None:
    with pytest.raises(fortio.LoadError, match=None) as refused:
        fortio.options_from_query(query, headers)
    assert error in str(refused.value)


def test_the_load_command_prints_codes_and_writes_json() -> None:
    async def scenario(base: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "samples.httpbin.src.fortio", "load", "-c", "1"]
        argv += ["-qps", "0", "-n", "3", "-json", "-", f"{base}/get"]
        proc = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.PIPE)
        out, _ = await asyncio.wait_for(proc.communicate(), 30)
        return subprocess.CompletedProcess(argv, proc.returncode or 0, out.decode(), "")

    _, done = serving(scenario)
    assert done.returncode == 0
    assert "Code 200 : 2 (66.7 %)" in done.stdout
    assert "Code 503 : 1 (33.3 %)" in done.stdout
    assert json.loads(done.stdout[done.stdout.index("{") :])["RetCodes"] == {"200": 2, "503": 1}
