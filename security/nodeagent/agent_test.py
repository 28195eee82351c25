import contextlib
import json
import logging
import pathlib
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator

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
from security.nodeagent.testing import (
    eventually,
    node,
    run_async,
    running,
    sds_driver,
    secrets_of,
    write_workload,
)

REVIEWS = "spiffe://cluster.local/ns/bookinfo/sa/reviews"
RATINGS = "spiffe://cluster.local/ns/bookinfo/sa/ratings"
ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod"


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


def agent_options(server: FakeCaServer, workdir: pathlib.Path) -> NodeAgentOptions:
    """An in-process agent of the fake CA, its state in `workdir/run`, status on any port."""
    root, token = write_ca_files(server, workdir)
    return NodeAgentOptions(
        ca_address=server.address,
        ca_root=root,
        token_file=token,
        run_dir=workdir / "run",
        status_address="127.0.0.1:0",
        ttl=3600,
    )


def running_agent(options: NodeAgentOptions) -> contextlib.AbstractAsyncContextManager[NodeAgent]:
    return running(NodeAgent(options=options))


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
        options = agent_options(server, workdir)
        socket_path = workdir / "sds" / "reviews" / "sds.sock"
        write_workload(workdir / "run" / "workloads", "reviews", REVIEWS, socket_path)
        async with running_agent(options) as agent:
            assert agent.workloads_path == workdir / "run" / "workloads"
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
    socket_path = workdir / "sds" / "reviews.sock"
    write_workload(workdir / "workloads", "reviews", REVIEWS, socket_path)
    log_path = workdir / "agent.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220  a fork before the loop has other work
            programs.command(
                "security.nodeagent.main",
                f"--ca-address={server.address}",
                f"--ca-root={root}",
                f"--token-file={token}",
                f"--workloads-dir={workdir / 'workloads'}",
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


async def refusal_of(socket_path: pathlib.Path, envoy_node) -> grpc.aio.AioRpcError:
    """Open an SDS stream that must be refused; the gRPC error it ends with."""
    try:
        async with sds_driver(socket_path, envoy_node) as envoy:
            await envoy.request(SECRET_TYPE, ["default"])
            response = await envoy.expect_response()
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"served {list(secrets_of(response))} to {envoy_node.id}")


@run_async(timeout=60)
async def test_a_workload_gets_its_own_identity_and_no_other(
    workdir: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="security.nodeagent")
    server = FakeCaServer(FakeCa())
    await server.start()
    try:
        options = agent_options(server, workdir)
        folder = options.workloads_path
        reviews = workdir / "sds" / "reviews" / "sds.sock"
        ratings = workdir / "sds" / "ratings" / "sds.sock"
        write_workload(folder, "reviews", REVIEWS, reviews, "bookinfo/reviews-v1")
        write_workload(folder, "ratings", RATINGS, ratings, "bookinfo/ratings-v1")
        # An entry for istiod's identity is refused: no workload socket ever serves it.
        write_workload(folder, "istiod", ISTIOD, workdir / "sds" / "istiod" / "sds.sock")
        async with running_agent(options) as agent:
            assert not (workdir / "sds" / "istiod").exists()
            _, text = await http_get(agent.status.port, "/debug/workloads")
            listed = json.loads(text)
            assert [w["identity"] for w in listed["served"]] == [RATINGS, REVIEWS]
            assert "reserved" in listed["refused"]["istiod.json"]

            # The rightful client, on its own socket, gets its certificate.
            async with sds_driver(reviews, node("bookinfo", "reviews", "reviews-v1")) as envoy:
                await envoy.request(SECRET_TYPE, ["default", "ROOTCA"])
                chain = secrets_of(await envoy.expect_response())[
                    "default"
                ].tls_certificate.certificate_chain.inline_bytes
                assert certificate_uris(chain) == (REVIEWS,)

            # A second local client, on ratings' socket, names reviews' identity (and then
            # istiod's) in its node metadata: refused, and said so in one line.
            for claimed in (
                node("bookinfo", "reviews", "thief"),
                node("istio-system", "istiod", "thief"),
            ):
                error = await refusal_of(ratings, claimed)
                assert error.code() == grpc.StatusCode.PERMISSION_DENIED
                assert f"which serves only {RATINGS}" in (error.details() or "")
            refusals = [r.getMessage() for r in caplog.records if "refusing" in r.getMessage()]
            assert len(refusals) == 2
            assert f"node 'thief' asked for {REVIEWS} on unix:{ratings}" in refusals[0]
            assert f"node 'thief' asked for {ISTIOD} on unix:{ratings}" in refusals[1]

            # FetchSecrets is refused the same way.
            async with grpc.aio.insecure_channel(socket_target(ratings)) as channel:
                request = discovery_pb2.DiscoveryRequest(
                    type_url=SECRET_TYPE, resource_names=["default"]
                )
                request.node.CopyFrom(node("bookinfo", "reviews", "thief"))
                stub = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await stub.FetchSecrets(request, timeout=10)
                assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
            # Only reviews' certificate was ever issued: nothing was signed for a thief.
            assert server.ca.calls == 1
            assert [s.identity for s in agent.cache.status()] == [REVIEWS]

            # A new workload (scale up) is served once its entry appears; a removed one's
            # socket goes.
            details = workdir / "sds" / "details" / "sds.sock"
            details_identity = "spiffe://cluster.local/ns/bookinfo/sa/details"
            write_workload(folder, "details", details_identity, details)
            await eventually(details.exists, timeout=10, what="the new workload's socket")
            async with sds_driver(details, node("bookinfo", "details")) as envoy:
                await envoy.request(SECRET_TYPE, ["default"])
                chain = secrets_of(await envoy.expect_response())[
                    "default"
                ].tls_certificate.certificate_chain.inline_bytes
                assert certificate_uris(chain) == (details_identity,)
            (folder / "ratings.json").unlink()
            await eventually(lambda: not ratings.exists(), timeout=10, what="ratings' socket gone")
        assert not reviews.exists()
        assert not details.exists()
    finally:
        await server.stop()
