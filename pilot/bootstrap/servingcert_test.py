"""Pilot's mutual-TLS xDS port: its certificate from the CA, and streams bound to identities.

Every sidecar of `make bookinfo` (and of tests/e2e) reaches Pilot over this port; these
tests pin the two decisions: which certificate Pilot serves, and which streams it refuses.
"""

import asyncio

from pilot.bootstrap.servingcert import SecureXdsOptions, ServingCertificate, authorize
from pilot.xds.proxy import parse_node
from pilot.xds.testing import node, run_async
from security.ca.testing import running_ca

TOKEN = "pilot-test-token"
NODE = "sidecar~127.0.1.5~reviews-v2.default~default.svc.cluster.local"


def _proxy(account):
    return parse_node(node(NODE, metadata={"NAMESPACE": "default", "SERVICE_ACCOUNT": account}))


def test_a_stream_must_be_the_workload_its_certificate_names():
    check = authorize("cluster.local")
    reviews = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    assert check(_proxy("bookinfo-reviews"), [reviews]) is None
    refusal = check(_proxy("bookinfo-ratings"), [reviews])
    assert refusal is not None
    assert "bookinfo-ratings" in refusal
    assert reviews in refusal
    assert "without a SPIFFE id" in check(_proxy("bookinfo-reviews"), [])


def test_pilot_gets_istiods_identity_and_renews_it(tmp_path):
    @run_async
    async def scenario():
        grants = {TOKEN: ["spiffe://cluster.local/ns/istio-system/sa/istiod"]}
        async with running_ca(tmp_path / "ca", grants=grants) as ca:
            root = tmp_path / "root-cert.pem"
            root.write_bytes(ca.bundle.root_pem())
            token = tmp_path / "token"
            token.write_text(TOKEN + "\n")
            cert = ServingCertificate(
                SecureXdsOptions("127.0.0.1:0", ca.address, root, token, ttl=3600)
            )
            await cert.obtain()
            assert cert.credentials() is not None
            first = cert.not_after
            await asyncio.sleep(1.1)  # certificates are stamped to the second
            await cert.obtain()
            assert cert.renewals == 1
            assert cert.not_after > first
            assert cert.identities == ["spiffe://cluster.local/ns/istio-system/sa/istiod"]

    scenario()
