"""httpbin: the endpoints Istio's tasks call, the request counts and the per-pod faults;
and the program as the local platform starts it (a process on its address)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import test_utils

from samples.httpbin.src import httpbin

Call = Callable[..., Awaitable[tuple[int, Any]]]


def run(scenario: Callable[[Call], Awaitable[None]], **options: Any) -> None:
    async def main() -> None:
        app = httpbin.build_app(httpbin.Options(**options))
        async with test_utils.TestClient(test_utils.TestServer(app)) as client:

            async def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
                async with client.request(method, path, **kwargs) as response:
                    text = await response.text()
                    return response.status, json.loads(text) if text else None

            await scenario(call)

    asyncio.run(main())


def test_get_echoes_args_headers_and_origin() -> None:
    async def scenario(call: Call) -> None:
        status, body = await call(
            "GET", "/get?a=1&a=2&b=x", headers={"x-b3-traceid": "7", "x-forwarded-for": "10.1.2.3"}
        )
        assert status == 200
        assert body["args"] == {"a": ["1", "2"], "b": ["x"]}
        assert body["headers"]["X-B3-Traceid"] == "7"
        assert body["origin"] == "10.1.2.3"
        assert body["url"].endswith("/get?a=1&a=2&b=x")
        assert (await call("GET", "/headers"))[1]["headers"]["Host"]
        assert (await call("GET", "/ip"))[1] == {"origin": "127.0.0.1"}

    run(scenario)


def test_anything_answers_every_method_with_its_body() -> None:
    async def scenario(call: Call) -> None:
        status, body = await call("POST", "/anything/x/y", json={"k": 1})
        assert status == 200
        assert (body["method"], body["json"]) == ("POST", {"k": 1})
        assert (await call("DELETE", "/anything"))[1]["method"] == "DELETE"

    run(scenario)


def test_status_answers_the_code_or_a_weighted_choice() -> None:
    async def scenario(call: Call) -> None:
        assert (await call("GET", "/status/418"))[0] == 418
        assert (await call("POST", "/status/503"))[0] == 503
        seen = {(await call("GET", "/status/200:1,503:1"))[0] for _ in range(40)}
        assert seen == {200, 503}
        assert (await call("GET", "/status/200:0,500:1"))[0] == 500
        status, body = await call("GET", "/status/99")
        assert (status, body) == (400, {"error": "invalid status code: 99"})
        assert (await call("GET", "/status/abc"))[0] == 400

    run(scenario)
    assert httpbin.choose_status("200:3,500:1", random.Random(1)) in (200, 500)


def test_delay_waits_then_echoes_and_refuses_past_the_maximum() -> None:
    async def scenario(call: Call) -> None:
        started = time.monotonic()
        status, body = await call("GET", "/delay/0.3")
        assert status == 200
        assert time.monotonic() - started >= 0.3
        assert "headers" in body
        status, body = await call("GET", "/delay/3")
        assert status == 400
        assert "from 0 to 2s" in body["error"]

    run(scenario, max_duration=2.0)


def test_hostname_is_the_pods_with_use_real_hostname() -> None:
    async def scenario(call: Call) -> None:
        assert (await call("GET", "/hostname"))[1] == {"hostname": "httpbin-v1-abc"}

    run(scenario, hostname="httpbin-v1-abc")


def test_requests_are_counted_per_path_and_request_id() -> None:
    async def scenario(call: Call) -> None:
        for rid in ("a", "a", "b"):
            await call("GET", "/get", headers={"x-request-id": rid})
        await call("GET", "/status/500")
        _, counts = await call("GET", "/_local/requests")
        host = counts["by_host"]
        assert counts == {
            "total": 4,
            "by_path": {"/get": 3, "/status/500": 1},
            "by_host": host,
            "by_request_id": {"a": 2, "b": 1},
        }
        assert list(host.values()) == [4]
        await call("GET", "/get", headers={"Host": "httpbin-shadow:8000"})
        _, counts = await call("GET", "/_local/requests")
        assert counts["by_host"]["httpbin-shadow:8000"] == 1

    run(scenario)


def test_a_fault_fails_every_attempt_or_only_the_first_ones() -> None:
    async def scenario(call: Call) -> None:
        status, fault = await call("PUT", "/_local/faults", json={"status": 503})
        assert (status, fault) == (200, {"status": 503, "delay": 0.0, "first": None})
        assert [(await call("GET", "/get"))[0] for _ in range(3)] == [503, 503, 503]
        await call("PUT", "/_local/faults", json={"status": 500, "first": 2})
        codes = [(await call("GET", "/get", headers={"x-request-id": "r"}))[0] for _ in range(3)]
        assert codes == [500, 500, 200]  # the third attempt of request r passes
        await call("PUT", "/_local/faults", json={"delay": 0.3, "first": 1})
        started = time.monotonic()
        assert (await call("GET", "/get", headers={"x-request-id": "s"}))[0] == 200
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        assert (await call("GET", "/get", headers={"x-request-id": "s"}))[0] == 200
        assert time.monotonic() - started < 0.3
        assert (await call("DELETE", "/_local/faults"))[0] == 200
        assert (await call("GET", "/get"))[0] == 200

    run(scenario)


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"status": 42}, "status: 42 is not an HTTP status"),
        ({"delay": -1}, "delay: -1 is not a number"),
        ({"first": 0}, "first: 0 is not a positive number"),
        ({"code": 500}, "unknown fields ['code']"),
        ([503], "the body must be a JSON object"),
    ],
)
def test_a_bad_fault_is_refused_and_changes_nothing(body: Any, error: str) -> None:
    async def scenario(call: Call) -> None:
        await call("PUT", "/_local/faults", json={"status": 502})
        status, answer = await call("PUT", "/_local/faults", json=body)
        assert status == 400
        assert error in answer["error"]
        assert (await call("GET", "/get"))[0] == 502

    run(scenario)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_program_serves_on_host_and_port_from_its_environment() -> None:
    port = _free_port()
    env = dict(os.environ, HOST="127.0.0.1", PORT=str(port), HOSTNAME="httpbin-v2-x")
    proc = subprocess.Popen(
        [sys.executable, "-m", "samples.httpbin.src.httpbin", "-use-real-hostname"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/hostname", timeout=2) as r:
                    assert json.load(r) == {"hostname": "httpbin-v2-x"}
                    break
            except OSError:
                assert time.monotonic() < deadline, "httpbin did not start"
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert b'"GET /hostname HTTP/1.1" 200' in out
