"""The broker as its own process: it starts, serves, stops on SIGTERM with exit 0, and a new
process on the same config store carries on where the last one stopped."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

from broker import testing
from pilot.configstore.server import Options as StoreOptions
from pilot.configstore.server import serving
from pkg.testing.aio import run_async
from security.ca.testing import running_ca


def _args(store_url: str, ca_address: str, files: dict, port: int = 0) -> list[str]:
    return [
        "--address", "127.0.0.1", "--port", str(port),
        "--config-store", store_url,
        "--ca-address", ca_address,
        "--ca-root", str(files["ca_root"]),
        "--ca-token-file", str(files["ca_token_file"]),
        "--credentials", str(files["credentials"]),
    ]  # fmt: skip


@run_async(timeout=120)
async def test_a_restarted_broker_process_knows_its_instances_and_bindings(tmp_path):
    async with (
        serving(StoreOptions(port=0, db=tmp_path / "store.db")) as store,
        running_ca(
            tmp_path / "ca",
            grants={testing.CA_TOKEN: ["spiffe://cluster.local/ns/istio-broker/sa/*"]},
        ) as ca,
    ):
        files = testing.write_files(tmp_path / "broker", tmp_path / "ca" / "ca" / "root-cert.pem")
        args = _args(store.url, ca.address, files)
        await testing.apply(store.url, testing.PRODUCTPAGE, testing.DEMO_CATALOG)

        first = testing.BrokerProcess(args)
        await asyncio.to_thread(first.start)
        try:
            async with testing.OsbClient(first.url) as osb:
                await testing.wait_catalog(osb, lambda c: len(c["services"]) == 1)
                assert (await osb.provision("p")).status == 201
                bound = await osb.bind("p", "b")
                assert bound.status == 201
        finally:
            code = await asyncio.to_thread(first.terminate)
        assert code == 0, first.log
        assert "PUT /v2/service_instances/p -> 201 user=platform" in first.log

        second = testing.BrokerProcess(args)
        await asyncio.to_thread(second.start)
        try:
            async with testing.OsbClient(second.url) as osb:
                again = await osb.bind("p", "b")
                assert (again.status, again.body) == (200, bound.body)
                assert (await osb.unbind("p", "b")).status == 200
                assert (await osb.deprovision("p")).status == 200
        finally:
            assert await asyncio.to_thread(second.terminate) == 0, second.log


def test_unusable_credentials_or_a_taken_port_end_it_with_one_line(tmp_path):
    files = testing.write_files(tmp_path, tmp_path / "root-cert.pem")
    files["credentials"].write_text("no colon here\n")
    run = subprocess.run(
        [sys.executable, "-m", "broker.main", *_args("http://127.0.0.1:1", "127.0.0.1:1", files)],
        cwd=testing.ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert run.returncode == 1
    assert "broker cannot start: " in run.stderr
    assert "want username:password" in run.stderr

    files["credentials"].write_text("u:p\n")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [
                sys.executable, "-m", "broker.main",
                *_args("http://127.0.0.1:1", "127.0.0.1:1", files, port=port),
            ],
            cwd=testing.ROOT,
            capture_output=True,
            text=True,
            timeout=30,
        )  # fmt: skip
    assert run.returncode == 1, run.stderr
    assert "broker cannot start" in run.stderr
