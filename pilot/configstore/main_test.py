"""The config-store binary as a process: acknowledged writes survive SIGKILL; SIGTERM is clean."""

from __future__ import annotations

import http.client
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from pilot.configstore.testing import StoreProcess
from pkg.testing import programs

PATH = "/apis/networking.istio.io/v1alpha3/namespaces/default/destinationrules"


def request(
    url: str, method: str = "GET", body: Any = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def dr(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "DestinationRule",
        "metadata": {"name": name},
        "spec": {"host": name, "subsets": [{"name": "v1", "labels": {"version": "v1"}}]},
    }


def test_acknowledged_writes_survive_sigkill(tmp_path):
    db = tmp_path / "store.db"
    with StoreProcess(db) as store:
        assert request(store.url + PATH, "POST", dr("reviews"))[0] == 201
        code, acknowledged = request(store.url + PATH, "POST", dr("ratings"))
        assert code == 201
        code, _ = request(store.url + PATH + "/reviews", "DELETE")
        assert code == 200
        store.kill()  # right after the acknowledgement: no shutdown, no flush
        assert store.process.returncode == -9

    with StoreProcess(db) as restarted:
        code, listed = request(restarted.url + PATH)
        assert code == 200
        assert listed["items"] == [acknowledged]
        assert listed["metadata"]["resourceVersion"] == "3"
        code, created = request(restarted.url + PATH, "POST", dr("details"))
        assert created["metadata"]["resourceVersion"] == "4"
        assert "resourceVersion 3" in restarted.log


def test_every_kind_of_write_is_durable_when_acknowledged(tmp_path):
    db = tmp_path / "store.db"
    v1 = PATH.replace("v1alpha3", "v1")
    with StoreProcess(db) as store:
        for name in ("a", "b", "c"):
            body = {**dr(name), "metadata": {"name": name, "labels": {"app": name}}}
            assert request(store.url + PATH, "POST", body)[0] == 201
        applied = {**dr("a"), "apiVersion": "networking.istio.io/v1"}
        applied["spec"]["trafficPolicy"] = {"tls": {"mode": "ISTIO_MUTUAL"}}
        url = f"{store.url}{v1}/a?fieldManager=tester"
        assert request(url, "PATCH", applied, "application/apply-patch+yaml")[0] == 200
        patch = [{"op": "replace", "path": "/spec/host", "value": "b.default.svc.cluster.local"}]
        assert (
            request(f"{store.url}{v1}/b", "PATCH", patch, "application/json-patch+json")[0] == 200
        )
        code, _ = request(f"{store.url}{v1}?labelSelector=app%3Dc", "DELETE")
        assert code == 200
        _, acknowledged = request(store.url + v1)
        store.kill()

    with StoreProcess(db) as restarted:
        _, listed = request(restarted.url + v1)
        assert listed == acknowledged
        names = [i["metadata"]["name"] for i in listed["items"]]
        assert names == ["a", "b"]
        managers = {m["manager"] for m in listed["items"][0]["metadata"]["managedFields"]}
        assert "tester" in managers


def test_sigterm_ends_watches_and_exits_cleanly(tmp_path):
    with StoreProcess(tmp_path / "store.db") as store:
        request(store.url + PATH, "POST", dr("reviews"))
        parsed = urllib.parse.urlsplit(store.url)
        connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
        connection.request("GET", PATH + "?watch=true")
        response = connection.getresponse()
        assert response.status == 200
        first = json.loads(response.readline())
        assert first["type"] == "ADDED"

        assert store.terminate() == 0
        assert response.read() == b""  # the stream ended cleanly, nothing half-written
        connection.close()
        assert "stopped" in store.log


def test_a_busy_port_is_a_clear_error(tmp_path):
    with StoreProcess(tmp_path / "a.db") as store:
        port = str(urllib.parse.urlsplit(store.url).port)
        result = subprocess.run(
            programs.command(
                "pilot.configstore.main", "--port", port, "--db", str(tmp_path / "b.db")
            ),
            env=programs.environ(),
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert result.returncode == 1
        assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
