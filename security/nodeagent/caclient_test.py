import pathlib
import tempfile
from collections.abc import Iterator

import pytest

from security.nodeagent import keys
from security.nodeagent.caclient import CaClient, CaClientOptions, CaError
from security.nodeagent.certificate import parse_chain
from security.nodeagent.fakeca import TEST_TOKEN, FakeCa, FakeCaServer
from security.nodeagent.testing import run_async

SPIFFE = "spiffe://cluster.local/ns/default/sa/sleep"


@pytest.fixture
def files() -> Iterator[pathlib.Path]:
    with tempfile.TemporaryDirectory(prefix="na-ca-") as directory:
        yield pathlib.Path(directory)


def client(
    server: FakeCaServer, directory: pathlib.Path, token: str | None = TEST_TOKEN
) -> CaClient:
    root = directory / "root-cert.pem"
    root.write_bytes(server.tls_root_pem)
    token_path = None
    if token is not None:
        token_path = directory / "token"
        token_path.write_text(token + "\n")
    return CaClient(
        options=CaClientOptions(
            address=server.address, root_path=root, token_path=token_path, timeout=5
        )
    )


def csr() -> str:
    return keys.csr_for(keys.new_key(), SPIFFE)


@run_async
async def test_create_certificate_over_tls_with_the_token(files: pathlib.Path) -> None:
    server = FakeCaServer(FakeCa(intermediate=True))
    await server.start()
    try:
        chain = parse_chain(await client(server, files).sign(csr(), 600))
        assert chain.uris == (SPIFFE,)
        assert chain.root_pem == server.ca.root_pem.strip() + "\n"
        assert len(chain.intermediate_pems) == 1
        assert server.ca.requests == [(SPIFFE, 600)]
    finally:
        await server.stop()


@run_async
async def test_the_token_file_is_read_on_every_call(files: pathlib.Path) -> None:
    server = FakeCaServer(FakeCa())
    await server.start()
    try:
        ca = client(server, files, token="stale")
        with pytest.raises(CaError, match="UNAUTHENTICATED") as raised:
            await ca.sign(csr(), 600)
        assert not raised.value.retryable
        (files / "token").write_text(TEST_TOKEN)  # the token was rotated
        assert await ca.sign(csr(), 600)
    finally:
        await server.stop()


@run_async
async def test_missing_files_are_ca_errors(files: pathlib.Path) -> None:
    ca = CaClient(
        options=CaClientOptions(
            address="127.0.0.1:1", root_path=files / "nope.pem", token_path=files / "token"
        )
    )
    with pytest.raises(CaError, match="cannot read the CA root file"):
        await ca.sign(csr(), 600)


@run_async
async def test_a_stopped_ca_is_a_retryable_error_and_a_restarted_one_answers(
    files: pathlib.Path,
) -> None:
    server = FakeCaServer(FakeCa())
    await server.start()
    ca = client(server, files)
    try:
        assert await ca.sign(csr(), 600)
        await server.stop()
        with pytest.raises(CaError, match="UNAVAILABLE") as raised:
            await ca.sign(csr(), 600)
        assert raised.value.retryable
        await server.start()  # same port
        assert await ca.sign(csr(), 600)
    finally:
        await server.stop()


@run_async
async def test_a_ca_not_signed_by_the_given_root_is_refused(files: pathlib.Path) -> None:
    server = FakeCaServer(FakeCa())
    await server.start()
    try:
        ca = client(server, files)
        (files / "root-cert.pem").write_text(FakeCa().root_pem)  # some other root
        with pytest.raises(CaError, match="UNAVAILABLE"):
            await ca.sign(csr(), 600)
        assert server.calls == 0
    finally:
        await server.stop()
