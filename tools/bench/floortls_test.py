"""The floor's mutual TLS hop with the real Envoy: requests pass through it encrypted, and the
server Envoy refuses a caller without the certificate. Addresses 127.<MESH_TEST_NET>.59.x."""

from __future__ import annotations

import asyncio
import http.server
import os
import pathlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from pkg.testing.envoy import EnvoyProcess
from tools.bench import dataplane, floortls

IP = f"127.{int(os.environ.get('MESH_TEST_NET', '0'))}.59.1"
CLIENT_PORT, SERVER_PORT, BACKEND_PORT = 10180, 10181, 10182


class _Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"hello"
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def backend() -> Iterator[None]:
    server = http.server.ThreadingHTTPServer((IP, BACKEND_PORT), _Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_the_floor_hop_is_mutual_tls_and_refuses_plaintext(
    tmp_path: pathlib.Path, backend: None
) -> None:
    material = floortls.write_material(tmp_path / "tls")
    client = EnvoyProcess(
        dataplane.floor_bootstrap(
            IP,
            CLIENT_PORT,
            (IP, SERVER_PORT),
            10190,
            cluster_tls=floortls.upstream_socket(material),
        ),
        tmp_path / "client",
        log_level="warning",
    )
    server = EnvoyProcess(
        dataplane.floor_bootstrap(
            IP,
            SERVER_PORT,
            (IP, BACKEND_PORT),
            10191,
            listener_tls=floortls.downstream_socket(material),
        ),
        tmp_path / "server",
        log_level="warning",
    )
    try:
        client.start()
        server.start()
        asyncio.run(client.wait_live())
        asyncio.run(server.wait_live())
        with urllib.request.urlopen(f"http://{IP}:{CLIENT_PORT}/", timeout=10) as response:
            assert response.status == 200
            assert response.read() == b"hello"
        stats = asyncio.run(server.admin_get("/stats", filter="ssl.handshake"))
        handshakes = [int(line.rpartition(": ")[2]) for line in stats.splitlines() if line]
        assert sum(handshakes) >= 1, stats
        # Plaintext straight to the server's listener gets no answer.
        with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):
            urllib.request.urlopen(f"http://{IP}:{SERVER_PORT}/", timeout=5)
    finally:
        client.stop()
        server.stop()
