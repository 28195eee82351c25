"""Warnings as Kubernetes' Warning header; bodies no store could walk get 400; refusals log once.

Driven over real HTTP against a real store, with the official kubernetes client where it is
the client that must see the warning.
"""

from __future__ import annotations

import asyncio
import json
import logging
import pathlib
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from pilot.configstore import feedback
from pilot.configstore.server import ConfigStoreServer, Options, serving

VS_PATH = "/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices"
Scenario = Callable[[ConfigStoreServer, aiohttp.ClientSession], Awaitable[None]]


def run(db: pathlib.Path, scenario: Scenario) -> None:
    async def main() -> None:
        async with (
            asyncio.timeout(30),
            serving(Options(port=0, db=db)) as server,
            aiohttp.ClientSession(base_url=server.url) as http,
        ):
            await scenario(server, http)

    asyncio.run(main())


def vs(http: dict[str, Any], name: str = "reviews") -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "VirtualService",
        "metadata": {"name": name},
        "spec": {"hosts": [name], "http": [http]},
    }


ROUTE = {"route": [{"destination": {"host": "reviews", "subset": "v1"}}]}


def test_warning_header_format():
    assert feedback.warning_header('say "hi"\\ now\n') == '299 - "say \\"hi\\"\\\\ now "'


def test_a_removed_field_is_accepted_with_a_kubernetes_warning_header(tmp_path):
    async def scenario(_: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        body = vs({"websocketUpgrade": True, **ROUTE})
        async with http.post(VS_PATH, json=body) as response:
            assert response.status == 201
            created = await response.json()
            assert response.headers.getall("Warning") == [
                "299 - \"spec.http[0].websocketUpgrade: removed from Istio's API (websocket "
                'upgrades are done automatically since Istio 1.0); ignored"'
            ]
        assert "websocketUpgrade" not in created["spec"]["http"][0]
        # An object without warnings gets no header.
        async with http.post(VS_PATH, json=vs(ROUTE, name="ratings")) as response:
            assert response.status == 201
            assert "Warning" not in response.headers

    run(tmp_path / "db", scenario)


def test_the_official_client_hands_the_warning_to_its_caller(tmp_path):
    kubernetes = pytest.importorskip("kubernetes")

    async def scenario(server: ConfigStoreServer, _: aiohttp.ClientSession) -> None:
        def create() -> Any:
            config = kubernetes.client.Configuration(host=server.url)
            with kubernetes.client.ApiClient(config) as api:
                custom = kubernetes.client.CustomObjectsApi(api)
                body = vs({"appendHeaders": {"x-a": "1"}, **ROUTE})
                return custom.create_namespaced_custom_object_with_http_info(
                    "networking.istio.io", "v1alpha3", "default", "virtualservices", body
                )

        created, code, headers = await asyncio.to_thread(create)
        assert code == 201
        assert headers["Warning"] == (
            "299 - \"spec.http[0].appendHeaders: removed from Istio's API; read as "
            'spec.http[0].headers.request.add"'
        )
        assert created["spec"]["http"][0]["headers"] == {"request": {"add": {"x-a": "1"}}}

    run(tmp_path / "db", scenario)


def test_kubectl_prints_the_warning(tmp_path):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is installed on every machine that runs these tests"
    manifest = tmp_path / "vs.yaml"
    manifest.write_text(json.dumps(vs({"websocketUpgrade": True, **ROUTE})))

    async def scenario(server: ConfigStoreServer, _: aiohttp.ClientSession) -> None:
        command = [
            kubectl,
            f"--server={server.url}",
            f"--cache-dir={tmp_path / 'cache'}",
            "create",
            "--validate=false",
            "-f",
            str(manifest),
        ]
        result = await asyncio.to_thread(
            subprocess.run, command, capture_output=True, text=True, timeout=20
        )
        assert result.returncode == 0, result.stderr
        assert "virtualservice.networking.istio.io/reviews created" in result.stdout
        assert result.stderr.strip() == (
            "Warning: spec.http[0].websocketUpgrade: removed from Istio's API (websocket "
            "upgrades are done automatically since Istio 1.0); ignored"
        )

    run(tmp_path / "db", scenario)


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        pytest.param(
            b"[" * 5000 + b"]" * 5000, 400, "nests deeper than 100 levels", id="deep nesting"
        ),
        pytest.param(
            (b'{"spec": {"a": ' + b"[" * 150 + b"]" * 150 + b"}}"),
            400,
            "nests deeper than 100 levels",
            id="nesting the parser takes but no walk should",
        ),
        pytest.param(
            b'{"a": ' + b"9" * 5000 + b"}", 400, "not valid JSON", id="5000-digit integer"
        ),
        pytest.param(b"\xff\xfe", 400, "not UTF-8", id="not UTF-8"),
        pytest.param(
            json.dumps(vs({**ROUTE, "mirrorPercentage": {"value": 1}}))
            .replace("1}", "NaN}")
            .encode(),
            422,
            "spec.http[0].mirrorPercentage.value: nan is not a JSON number",
            id="NaN",
        ),
        pytest.param(
            json.dumps(vs({**ROUTE, "mirrorPercentage": {"value": 1}}))
            .replace("1}", "1" + "0" * 400 + "}")
            .encode(),
            422,
            "an integer of 1329 bits is too large",
            id="integer too large for a double",
        ),
    ],
)
def test_bodies_no_store_could_walk_are_refused_never_500(tmp_path, caplog, raw, code, message):
    async def scenario(_: ConfigStoreServer, http: aiohttp.ClientSession) -> None:
        for _attempt in range(3):
            async with http.post(
                VS_PATH, data=raw, headers={"Content-Type": "application/json"}
            ) as response:
                assert response.status == code
                status = await response.json()
                assert status["kind"] == "Status", status
                assert message in status["message"], status

    with caplog.at_level(logging.INFO, logger="pilot.configstore"):
        run(tmp_path / "db", scenario)
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 3  # one line per request
    assert all(r.exc_info is None and "\n" not in r.getMessage() for r in refusals)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
