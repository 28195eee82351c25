"""The synchronous client against a real config store (a process, as istioctl meets it)."""

from __future__ import annotations

import http.server
import pathlib
import socket
import sys
import threading
from collections.abc import Iterator

import pytest

from pilot.configstore.testing import StoreProcess
from pkg.config import loader
from pkg.config.kinds import ALL
from pkg.config.resource import Resource
from pkg.kube import errors
from pkg.kube.syncclient import SyncConfigClient

VS = ALL.by_name("vs")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreProcess]:
    with StoreProcess(tmp_path_factory.mktemp("store") / "db") as running:
        yield running


def vs(name: str, subset: str = "v1", namespace: str = "default") -> Resource:
    (resource,) = loader.load_text(
        f"""
apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata: {{name: {name}, namespace: {namespace}, labels: {{app: {name}}}}}
spec:
  hosts: [{name}]
  http:
  - route:
    - destination: {{host: {name}, subset: {subset}}}
"""
    )
    return resource


def test_crud_apply_and_errors_over_one_connection(store):
    with SyncConfigClient(store.url) as client:
        created = client.create(vs("sync-a"))
        assert created.metadata.uid
        assert created.metadata.resource_version
        assert client.get(VS, "sync-a") == created
        with pytest.raises(errors.AlreadyExists):
            client.create(vs("sync-a"))
        assert client.apply(vs("sync-a")) == "unchanged"
        assert client.apply(vs("sync-a", "v2")) == "configured"
        assert client.apply(vs("sync-b", namespace="sync")) == "created"
        assert client.get(VS, "sync-a").spec.http[0].route[0].destination.subset == "v2"
        stale = created  # its resourceVersion is two writes old
        with pytest.raises(errors.Conflict):
            client.update(stale)
        patched = client.patch(VS, "sync-a", {"metadata": {"labels": {"team": "x"}}})
        assert patched.metadata.labels == {"app": "sync-a", "team": "x"}
        names = {(r.metadata.namespace, r.metadata.name) for r in client.list(VS).items}
        assert {("default", "sync-a"), ("sync", "sync-b")} <= names
        assert [r.metadata.name for r in client.list(VS, "sync").items] == ["sync-b"]
        raw = client.get_raw("/apis/networking.istio.io/v1alpha3/namespaces/sync/virtualservices")
        assert [o["metadata"]["name"] for o in raw["items"]] == ["sync-b"]
        client.delete(VS, "sync-a")
        client.delete(VS, "sync-b", "sync")
        with pytest.raises(errors.NotFound) as missing:
            client.get(VS, "sync-a")
        assert str(missing.value) == (
            'Error from server (NotFound): virtualservices.networking.istio.io "sync-a" not found'
        )


def test_invalid_objects_get_the_stores_message(store):
    bad = vs("sync-bad")
    bad.spec.http[0].route[0].weight = -5
    with SyncConfigClient(store.url) as client, pytest.raises(errors.Invalid) as refused:
        client.create(bad)
    assert "spec.http[0].route[0].weight" in refused.value.message


def test_a_connection_the_server_closed_is_reopened(store):
    with SyncConfigClient(store.url) as client:
        client.list(VS)
        assert client._connection is not None
        client._connection.sock.shutdown(socket.SHUT_RDWR)  # as an idle timeout would
        client.list(VS)


def test_unreachable_store_names_the_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with SyncConfigClient(url, timeout=2) as client, pytest.raises(errors.Unavailable) as refused:
        client.list(VS)
    assert str(refused.value) == f"cannot reach the config store at {url}: connection refused"
    assert not refused.value.reached


def test_a_silent_server_times_out():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with (
            SyncConfigClient(url, timeout=0.3) as client,
            pytest.raises(errors.Unavailable, match=r"no answer within 0\.3s"),
        ):
            client.list(VS)


class _Warns(http.server.BaseHTTPRequestHandler):
    """An API server answering with Kubernetes' Warning headers (RFC 7234 form)."""

    def do_GET(self) -> None:
        body = b'{"kind": "VirtualServiceList", "items": [], "metadata": {"resourceVersion": "1"}}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Warning", '299 - "networking.istio.io/v1alpha3 is old; use v1"')
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_warnings_reach_the_handler():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Warns)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        seen: list[str] = []
        url = f"http://127.0.0.1:{server.server_port}"
        with SyncConfigClient(url, on_warning=seen.append) as client:
            assert client.list(VS).items == []
        assert seen == ["networking.istio.io/v1alpha3 is old; use v1"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_bad_urls_are_refused_at_once():
    with pytest.raises(ValueError, match="not an http"):
        SyncConfigClient("store:8001")


def test_importing_it_pulls_in_neither_asyncio_nor_aiohttp(tmp_path: pathlib.Path):
    import subprocess

    probe = (
        "import sys; import pkg.kube.syncclient; "
        "bad = [m for m in ('asyncio', 'aiohttp') if m in sys.modules]; "
        "sys.exit(', '.join(bad) or None)"
    )
    root = pathlib.Path(__file__).absolute().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
