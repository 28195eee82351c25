"""The CA over real gRPC and real TLS on 127.0.0.1: issuance, chains, TTLs, every refusal,
renewal over mTLS, and the health endpoint."""

import datetime
import subprocess

import aiohttp
import grpc
import pytest
from cryptography import x509
from cryptography.x509 import verification

from api.security.v1alpha1 import ca_pb2, ca_pb2_grpc
from pkg.ca.client import (
    CaClient,
    CaError,
    CaInvalidRequest,
    CaPermissionDenied,
    CaUnauthenticated,
    CaUnavailable,
    ClientCert,
    create_certificate,
    error_for,
)
from pkg.ca.csr import csr_for, new_key
from security.ca import cadir
from security.ca.authority import CertificateAuthority, IssuePolicy
from security.ca.bundle import CaConfigError, Mode, build_bundle, key_pem
from security.ca.identity import SpiffeId
from security.ca.testing import (
    csr_with_two_sans,
    issue_once,
    new_intermediate,
    run_async,
    running_ca,
    tampered_csr,
    write_plugged_in,
)
from security.ca.tokens import TokenFileError

A = "spiffe://cluster.local/ns/default/sa/a"
B = "spiffe://cluster.local/ns/default/sa/b"
GRANTS = {"token-a": [A], "token-default": ["spiffe://cluster.local/ns/default/sa/*"]}


def _certs(chain):
    return [x509.load_pem_x509_certificate(c.encode()) for c in chain]


def _lifetime(leaf):
    return leaf.not_valid_after_utc - leaf.not_valid_before_utc - datetime.timedelta(minutes=1)


def _verify(chain, root):
    """RFC 5280 path validation by an independent verifier, as a TLS peer would do it."""
    leaf, *intermediates = _certs(chain)
    verifier = (
        verification.PolicyBuilder().store(verification.Store([root])).build_client_verifier()
    )
    return verifier.verify(leaf, intermediates)


@run_async
async def test_self_signed_issuance_over_tls(tmp_path):
    async with running_ca(tmp_path, grants=GRANTS) as ca:
        root_pem = (tmp_path / "ca" / "root-cert.pem").read_bytes()
        issued = await issue_once(ca.address, root_pem, A, token="token-a", ttl_seconds=3600)

        leaf, root = _certs(issued.chain)
        assert root == x509.load_pem_x509_certificate(root_pem)
        assert leaf.public_key().public_numbers() == issued.key.public_key().public_numbers()
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert san.get_values_for_type(x509.UniformResourceIdentifier) == [A]
        assert _lifetime(leaf) == datetime.timedelta(hours=1)
        assert _verify(issued.chain, root).subjects == [x509.UniformResourceIdentifier(A)]
        assert ca.authority.issued == 1
        # OpenSSL's path builder too: the leaf's subject equals the root's, only the key ids
        # tell it the leaf is not self-signed.
        (tmp_path / "root.pem").write_bytes(root_pem)
        (tmp_path / "leaf.pem").write_text(issued.chain[0])
        openssl = subprocess.run(  # noqa: ASYNC221  one short openssl run the test waits for
            [
                "openssl",
                "verify",
                "-CAfile",
                str(tmp_path / "root.pem"),
                str(tmp_path / "leaf.pem"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert openssl.returncode == 0, openssl.stdout + openssl.stderr

        # The CA's own certificate verifies for its service name, not just its IP.
        again = await create_certificate(
            ca.address,
            root_pem,
            csr_for(new_key("rsa"), A),
            60,
            token="token-a",
            server_name="istio-ca",
        )
        assert len(again) == 2
        assert ca.authority.issued == 2


@run_async
async def test_ttl_default_requested_and_capped(tmp_path):
    hour = datetime.timedelta(hours=1)
    async with running_ca(
        tmp_path, grants=GRANTS, workload_cert_ttl=2 * hour, max_workload_cert_ttl=5 * hour
    ) as ca:
        root_pem = ca.bundle.root_pem()
        async with CaClient(ca.address, root_pem, token="token-a") as client:
            for requested, expected in [(0, 2 * hour), (1800, hour / 2), (10 * 3600, 5 * hour)]:
                chain = await client.create_certificate(csr_for(new_key(), A), requested)
                assert _lifetime(_certs(chain)[0]) == expected, requested


@run_async
async def test_a_plugged_in_ca_issues_chains_ending_in_the_operators_root(tmp_path):
    plugged = write_plugged_in(tmp_path / "cacerts")
    async with running_ca(tmp_path, ca_dir=tmp_path / "cacerts", grants=GRANTS) as ca:
        assert ca.bundle.mode is Mode.PLUGGED_IN
        root_pem = (tmp_path / "cacerts" / "root-cert.pem").read_bytes()
        issued = await issue_once(ca.address, root_pem, B, token="token-default")

        leaf, intermediate, root = _certs(issued.chain)
        assert intermediate == plugged.intermediate
        assert root == plugged.root
        assert leaf.issuer == plugged.intermediate.subject
        path = _verify(issued.chain, plugged.root)
        assert path.chain == [leaf, plugged.intermediate, plugged.root]


REFUSALS = [
    # (what, token, csr, error type, status, message fragment)
    ("garbage CSR", "token-a", "not a csr", CaInvalidRequest, "INVALID_ARGUMENT", "invalid CSR: "),
    (
        "CSR changed after signing",
        "token-default",
        tampered_csr(csr_for(new_key(), A), b"sa/a", b"sa/b"),
        CaInvalidRequest,
        "INVALID_ARGUMENT",
        "invalid CSR: the signature does not verify",
    ),
    (
        "someone else's identity",
        "token-a",
        csr_for(new_key(), B),
        CaPermissionDenied,
        "PERMISSION_DENIED",
        f"may not claim identity {B}",
    ),
    (
        "one of two identities not granted",
        "token-a",
        csr_for(new_key(), [A, B]),
        CaPermissionDenied,
        "PERMISSION_DENIED",
        f"may not claim identity {B}",
    ),
    (
        "another trust domain",
        "token-default",
        csr_for(new_key(), "spiffe://evil.org/ns/default/sa/a"),
        CaInvalidRequest,
        "INVALID_ARGUMENT",
        "outside this CA's trust domain 'cluster.local'",
    ),
    (
        "no token",
        None,
        csr_for(new_key(), A),
        CaUnauthenticated,
        "UNAUTHENTICATED",
        "no credentials",
    ),
    (
        "unknown token",
        "guess",
        csr_for(new_key(), A),
        CaUnauthenticated,
        "UNAUTHENTICATED",
        "unknown bearer token",
    ),
]


@pytest.mark.parametrize(
    ("token", "csr", "error", "status", "fragment"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
@run_async
async def test_refusals_carry_a_status_and_sign_nothing(
    tmp_path, token, csr, error, status, fragment
):
    async with running_ca(tmp_path, grants=GRANTS) as ca:
        with pytest.raises(error) as e:
            await create_certificate(ca.address, ca.bundle.root_pem(), csr, 3600, token=token)
        assert e.value.code.name == status
        assert fragment in e.value.message
        assert not e.value.retryable
        assert ca.authority.issued == 0
        metrics = await _get_text(f"http://{ca.health_address}/metrics")
        assert f'citadel_server_refusals{{code="{status}"}} 1.0' in metrics
        assert "citadel_server_csr_count 1.0\n" in metrics
        assert "citadel_server_success_cert_issuance_count 0.0\n" in metrics
        istio_counter = {
            "UNAUTHENTICATED": "citadel_server_authentication_failure_count",
            "PERMISSION_DENIED": "citadel_server_authentication_failure_count",
            "INVALID_ARGUMENT": "citadel_server_csr_parsing_err_count",
        }[status]
        assert f"{istio_counter} 1.0\n" in metrics


@run_async
async def test_a_malformed_authorization_header_is_unauthenticated(tmp_path):
    async with running_ca(tmp_path, grants=GRANTS) as ca:
        credentials = grpc.ssl_channel_credentials(ca.bundle.root_pem())
        async with grpc.aio.secure_channel(ca.address, credentials) as channel:
            stub = ca_pb2_grpc.IstioCertificateServiceStub(channel)
            request = ca_pb2.IstioCertificateRequest(csr=csr_for(new_key(), A))
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await stub.CreateCertificate(
                    request, metadata=(("authorization", "Basic token-a"),), timeout=10
                )
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert e.value.details() == "the authorization metadata is not 'Bearer <token>'"
        assert ca.authority.issued == 0


@run_async
async def test_renewal_with_a_certificate_this_ca_issued(tmp_path):
    async with running_ca(tmp_path, grants=GRANTS) as ca:
        root_pem = ca.bundle.root_pem()
        first = await issue_once(ca.address, root_pem, A, token="token-a")

        renewed = await issue_once(
            ca.mtls_address, root_pem, A, client_cert=first.client_cert(), ttl_seconds=600
        )
        assert _verify(renewed.chain, ca.bundle.root).subjects == [
            x509.UniformResourceIdentifier(A)
        ]
        assert ca.authority.issued == 2

        # The certificate proves exactly its own identity.
        with pytest.raises(CaPermissionDenied) as e:
            await issue_once(ca.mtls_address, root_pem, B, client_cert=first.client_cert())
        assert f"the caller (client certificate) may not claim identity {B}" in e.value.message
        assert e.value.message.endswith(f"it may claim: {A}")

        # The mTLS listener requires a certificate: without one the handshake fails.
        with pytest.raises(CaUnavailable):
            await issue_once(ca.mtls_address, root_pem, A, token="token-a")
        assert ca.authority.issued == 2


@run_async
async def test_a_certificate_from_another_ca_cannot_renew(tmp_path):
    async with (
        running_ca(tmp_path / "one", grants=GRANTS) as one,
        running_ca(tmp_path / "two", grants=GRANTS) as two,
    ):
        theirs = await issue_once(two.address, two.bundle.root_pem(), A, token="token-a")
        with pytest.raises(CaUnavailable):  # the TLS layer rejects the foreign chain
            await issue_once(
                one.mtls_address, one.bundle.root_pem(), A, client_cert=theirs.client_cert()
            )
        # And a client trusting the wrong root does not talk to this CA at all.
        with pytest.raises(CaUnavailable):
            await issue_once(one.address, two.bundle.root_pem(), A, token="token-a")
        assert one.authority.issued == 0


@run_async
async def test_a_sibling_intermediate_under_the_same_root_is_not_this_ca(tmp_path):
    plugged = write_plugged_in(tmp_path / "cacerts")
    key, sibling = new_intermediate(plugged.root, plugged.root_key, "cluster.local", "Sibling")
    sibling_ca = CertificateAuthority(
        build_bundle(key, sibling, [plugged.root], Mode.PLUGGED_IN), IssuePolicy()
    )
    workload_key = new_key()
    chain = sibling_ca.sign_workload(workload_key.public_key(), [SpiffeId.parse(A)], 3600)
    async with running_ca(tmp_path, ca_dir=tmp_path / "cacerts", grants=GRANTS) as ca:
        with pytest.raises(CaUnauthenticated) as e:
            await issue_once(
                ca.mtls_address,
                ca.bundle.root_pem(),
                A,
                client_cert=ClientCert.from_chain(key_pem(workload_key), chain),
            )
        assert e.value.message == "the client certificate was not issued by this CA"
        assert ca.authority.issued == 0


@run_async
async def test_health_reports_the_root(tmp_path):
    async with running_ca(tmp_path, grants=GRANTS) as ca:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{ca.health_address}/ready") as response,
        ):
            assert response.status == 200
            body = await response.json()
        assert body["ready"] is True
        assert body["mode"] == "self-signed"
        assert body["trustDomain"] == "cluster.local"
        assert body["rootSha256"] == ca.bundle.root_fingerprint()
        assert len(body["rootSha256"]) == 64


@run_async
async def test_a_bad_token_file_or_key_stops_the_start(tmp_path):
    (tmp_path / "tokens.yaml").write_text("- token: x\n")
    with pytest.raises(TokenFileError, match="entry 0: identities"):
        async with running_ca(tmp_path):
            pass

    cadir.load_or_create(tmp_path / "ca", cadir.RootOptions())
    (tmp_path / "ca" / "ca-key.pem").write_bytes(key_pem(new_key()))
    with pytest.raises(CaConfigError, match="does not match"):
        async with running_ca(tmp_path, grants=GRANTS):
            pass


async def _get_text(url):
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        return await response.text()


def test_error_types_follow_the_status_code():
    assert isinstance(error_for(grpc.StatusCode.UNAVAILABLE, "x"), CaUnavailable)
    assert error_for(grpc.StatusCode.UNAVAILABLE, "x").retryable
    assert type(error_for(grpc.StatusCode.INTERNAL, "x")) is CaError


_CSR_FIELD = b"\x0a\x03csr"  # IstioCertificateRequest.csr, a proto3 string


@pytest.mark.parametrize(
    "data",
    [b"\xff" * 16, _CSR_FIELD[:-2], _CSR_FIELD[:2] + b"\xc3\x28r"],
    ids=["random", "truncated", "invalid-utf8"],
)
@run_async
async def test_undecodable_requests_are_invalid_argument(tmp_path, data):
    async with running_ca(tmp_path, grants=GRANTS) as ca:
        credentials = grpc.ssl_channel_credentials(ca.bundle.root_pem())
        async with grpc.aio.secure_channel(ca.address, credentials) as channel:
            call = channel.unary_unary("/istio.v1.auth.IstioCertificateService/CreateCertificate")
            with pytest.raises(grpc.aio.AioRpcError) as e:
                await call(data, metadata=(("authorization", "Bearer token-a"),), timeout=10)
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "cannot parse the request as istio.v1.auth.IstioCertificateRequest" in (
            e.value.details()
        )
        assert ca.authority.issued == 0
        metrics = await _get_text(f"http://{ca.health_address}/metrics")
        assert 'citadel_server_refusals{code="INVALID_ARGUMENT"} 1.0' in metrics


@run_async
async def test_a_csr_with_two_san_extensions_is_invalid_argument(tmp_path):
    async with running_ca(tmp_path, grants=GRANTS) as ca:
        csr = csr_with_two_sans(new_key(), A, B)
        with pytest.raises(CaInvalidRequest) as e:
            await create_certificate(ca.address, ca.bundle.root_pem(), csr, 3600, token="token-a")
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "appears more than once" in e.value.message
        assert ca.authority.issued == 0
