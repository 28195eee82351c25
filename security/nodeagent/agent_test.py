import asyncio
import contextlib
import json
import pathlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator

import aiohttp
import grpc
import pytest
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from pkg.testing import programs
from security.nodeagent.agent import NodeAgent
from security.nodeagent.certificate import certificate_uris
from security.nodeagent.fakeca import TEST_TOKEN, FakeCa, FakeCaServer
from security.nodeagent.options import NodeAgentOptions
from security.nodeagent.resources import SECRET_TYPE
from security.nodeagent.server import prepare_socket_path, socket_target
from security.nodeagent.testing import eventually, node, run_async, sds_driver, secrets_of

REVIEWS = "spiffe://cluster.local/ns/bookinfo/sa/reviews"


@pytest.fixture
def workdir() -> Iterator[pathlib.Path]:
    # Short: a Unix socket path must fit in 107 bytes.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="na-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def write_ca_files(
    server: FakeCaServer, workdir: pathlib.Path
) -> tuple[pathlib.Path, pathlib.Path]:
    root = workdir / "root-cert.pem"
    root.write_bytes(server.tls_root_pem)
    token = workdir / "token"
    token.write_text(TEST_TOKEN)
    return root, token


@contextlib.asynccontextmanager
async def running_agent(options: NodeAgentOptions) -> AsyncIterator[NodeAgent]:
    agent = NodeAgent(options=options)
    stop, started = asyncio.Event(), asyncio.Event()
    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(agent.run(stop, started=started), name="agent")
        async with asyncio.timeout(10):
            await asyncio.wait(
                {task, tasks.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED
            )
        if task.done():
            task.result()
        try:
            yield agent
        finally:
            stop.set()


async def http_get(port: int, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.text()


@run_async
async def test_agent_serves_sds_on_a_private_socket_and_reports_status(
    workdir: pathlib.Path,
) -> None:
    server = FakeCaServer(FakeCa())
    await server.start()
    try:
        root, token = write_ca_files(server, workdir)
        options = NodeAgentOptions(
            ca_address=server.address,
            ca_root=root,
            token_file=token,
            run_dir=workdir / "run",
            status_address="127.0.0.1:0",
            ttl=3600,
        )
        socket_path = workdir / "run" / "sds" / "sds.sock"
        async with running_agent(options) as agent:
            assert agent.socket_path == socket_path
            assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700
            assert stat.S_IMODE(socket_path.stat().st_mode) == 0o600
            assert (await http_get(agent.status.port, "/ready"))[0] == 200

            async with sds_driver(socket_path, node("bookinfo", "reviews")) as envoy:
                await envoy.request(SECRET_TYPE, ["default", "ROOTCA"])
                response = await envoy.expect_response()
                secrets = secrets_of(response)
                chain = secrets["default"].tls_certificate.certificate_chain.inline_bytes
                assert certificate_uris(chain) == (REVIEWS,)
                await envoy.ack(response)
                await envoy.expect_no_response()

                status, text = await http_get(agent.status.port, "/debug/secrets")
                assert status == 200
                [entry] = json.loads(text)
                assert entry["identity"] == REVIEWS
                assert entry["serial"]
                assert entry["not_after"] > entry["not_before"]
                assert entry["rotations"] == 0
                assert entry["last_error"] is None
                assert entry["watchers"] == 1

                status, text = await http_get(agent.status.port, "/debug/sds")
                assert '"acks": 1' in text

                status, text = await http_get(agent.status.port, "/metrics")
                assert status == 200
                assert "total_active_connections 1.0\n" in text
                assert 'num_outgoing_requests{request_type="csr"} 1.0\n' in text
                assert 'num_failed_outgoing_requests{request_type="csr"} 0.0\n' in text
                expiry = re.search(
                    r'^cert_expiry_seconds\{resource_name="(.+)"\} (\S+)$', text, re.M
                )
                assert expiry is not None
                assert expiry.group(1) == REVIEWS
                assert 3500 < float(expiry.group(2)) <= 3600

            # FetchSecrets, the unary form.
            async with grpc.aio.insecure_channel(socket_target(socket_path)) as channel:
                request = discovery_pb2.DiscoveryRequest(
                    type_url=SECRET_TYPE, resource_names=["default"]
                )
                request.node.CopyFrom(node("bookinfo", "reviews"))
                fetched = await sds_pb2_grpc.SecretDiscoveryServiceStub(channel).FetchSecrets(
                    request, timeout=10
                )
                assert set(secrets_of(fetched)) == {"default"}
            assert server.ca.calls == 1  # one certificate for the identity, cached
        assert not socket_path.exists()
    finally:
        await server.stop()


@run_async
async def test_agent_refuses_a_missing_root_file(workdir: pathlib.Path) -> None:
    with pytest.raises(FileNotFoundError):
        NodeAgent(options=NodeAgentOptions(ca_root=workdir / "missing.pem"))


def test_prepare_socket_path_clears_a_stale_socket(workdir: pathlib.Path) -> None:
    path = workdir / "sds" / "sds.sock"
    path.parent.mkdir()
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays: a crashed agent's leftover
    prepare_socket_path(path)
    assert not path.exists()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_prepare_socket_path_refuses_a_live_socket(workdir: pathlib.Path) -> None:
    path = workdir / "sds.sock"
    live = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    live.bind(str(path))
    live.listen()
    try:
        with pytest.raises(ValueError, match="already serving"):
            prepare_socket_path(path)
    finally:
        live.close()


def test_prepare_socket_path_refuses_other_files_and_long_paths(workdir: pathlib.Path) -> None:
    path = workdir / "file"
    path.write_text("x")
    with pytest.raises(ValueError, match="not a socket"):
        prepare_socket_path(path)
    with pytest.raises(ValueError, match="too long"):
        prepare_socket_path(workdir / ("x" * 120))


@run_async
async def test_cli_serves_until_sigterm_and_removes_its_socket(workdir: pathlib.Path) -> None:
    server = FakeCaServer(FakeCa())
    await server.start()
    root, token = write_ca_files(server, workdir)
    socket_path = workdir / "sds.sock"
    log_path = workdir / "agent.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220  a fork before the loop has other work
            programs.command(
                "security.nodeagent.main",
                f"--ca-address={server.address}",
                f"--ca-root={root}",
                f"--token-file={token}",
                f"--sds-socket={socket_path}",
                f"--run-dir={workdir}",
                "--status-address=127.0.0.1:0",
                "--ttl=1h",
            ),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=programs.environ(PYTHONUNBUFFERED="1"),
        )
    try:
        await eventually(
            lambda: socket_path.exists() or process.poll() is not None,
            timeout=20,
            what="the agent's socket",
        )
        assert process.poll() is None, log_path.read_text()
        async with sds_driver(socket_path, node("bookinfo", "reviews")) as envoy:
            await envoy.request(SECRET_TYPE, ["default"])
            response = await envoy.expect_response()
            chain = secrets_of(response)["default"].tls_certificate.certificate_chain.inline_bytes
            assert certificate_uris(chain) == (REVIEWS,)
            process.send_signal(signal.SIGTERM)
            await envoy.expect_end()
        await eventually(lambda: process.poll() is not None, timeout=15, what="agent exit")
        assert process.returncode == 0, log_path.read_text()
        assert not socket_path.exists()
        assert "node agent stopping" in log_path.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        await server.stop()
