"""The agent against the real CA (security/ca), in this process: issuance and refusal."""

import contextlib
import logging
import pathlib
import shutil
import tempfile
from collections.abc import Iterator

import pytest
from cryptography import x509

from security.ca.testing import running_ca
from security.nodeagent.agent import NodeAgent
from security.nodeagent.certificate import certificate_uris
from security.nodeagent.options import NodeAgentOptions
from security.nodeagent.resources import SECRET_TYPE
from security.nodeagent.testing import (
    eventually,
    node,
    run_async,
    running,
    sds_driver,
    secrets_of,
    write_workload,
)

TOKEN = "node-agent-token"


@pytest.fixture
def workdir() -> Iterator[pathlib.Path]:
    directory = pathlib.Path(tempfile.mkdtemp(prefix="na-ca-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def running_agent(options: NodeAgentOptions) -> contextlib.AbstractAsyncContextManager[NodeAgent]:
    return running(NodeAgent(options=options))


@run_async(timeout=90)
async def test_certificates_from_the_real_ca(
    workdir: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="security.nodeagent")
    # This node's agent may claim the identities of namespace bookinfo only.
    grants = {TOKEN: ["spiffe://cluster.local/ns/bookinfo/sa/*"]}
    async with running_ca(workdir / "ca", grants=grants) as ca:
        root = workdir / "root-cert.pem"
        root.write_bytes(ca.bundle.root_pem())
        token = workdir / "token"
        token.write_text(TOKEN)
        options = NodeAgentOptions(
            ca_address=ca.address,
            ca_root=root,
            token_file=token,
            run_dir=workdir / "agent",
            status_address="127.0.0.1:0",
            ttl=3600,
        )
        reviews, admin = workdir / "sds" / "reviews.sock", workdir / "sds" / "admin.sock"
        write_workload(
            options.workloads_path,
            "reviews",
            "spiffe://cluster.local/ns/bookinfo/sa/reviews",
            reviews,
        )
        write_workload(
            options.workloads_path, "admin", "spiffe://cluster.local/ns/kube-system/sa/admin", admin
        )
        async with running_agent(options) as agent:
            async with sds_driver(reviews, node("bookinfo", "reviews")) as envoy:
                await envoy.request(SECRET_TYPE, ["default", "ROOTCA"])
                secrets = secrets_of(await envoy.expect_response(timeout=30))
            chain = secrets["default"].tls_certificate.certificate_chain.inline_bytes
            assert certificate_uris(chain) == ("spiffe://cluster.local/ns/bookinfo/sa/reviews",)
            leaf = x509.load_pem_x509_certificate(chain)
            lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
            assert 3600 <= lifetime.total_seconds() <= 3600 + 600  # allowing a backdated start
            trusted = secrets["ROOTCA"].validation_context.trusted_ca.inline_bytes
            assert trusted.strip() == ca.bundle.root_pem().strip()

            # An identity the token may not claim: refused, logged, retried; never served.
            async with sds_driver(admin, node("kube-system", "admin")) as other:
                await other.request(SECRET_TYPE, ["default"])
                await eventually(
                    lambda: any(
                        s.identity.endswith("/ns/kube-system/sa/admin") and s.failures >= 2
                        for s in agent.cache.status()
                    ),
                    timeout=20,
                    what="refused attempts",
                )
                await other.expect_no_response(0.2)
            [refused] = [s for s in agent.cache.status() if s.failures]
            assert "PERMISSION_DENIED" in (refused.last_error or "")
            assert refused.serial is None
            assert "PERMISSION_DENIED" in caplog.text
