"""Identity and mutual TLS across the mesh: real CA, node agent, SDS, Envoys and TLS.

One mesh for the module, started from an operator's plugged-in root and with workload
certificates that live 6 s, so rotation happens many times while the tests run.
"""

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request

import pytest
from cryptography import x509

from pkg.testing.wait import poll
from security.ca.testing import write_plugged_in
from tests.e2e.meshtest import ROOT, MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(5)
SECURITY = ROOT / "samples/bookinfo/security"


@pytest.fixture(scope="module")
def plugged(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("mesh")
    return run_dir, write_plugged_in(run_dir / "ca")


@pytest.fixture(scope="module")
def mesh(plugged):
    run_dir, _ = plugged
    with MeshUnderTest(run_dir, SUBNET, cert_ttl="6s", heal=False) as mesh:
        mesh.apply("destination-rule-all")
        yield mesh


def _secrets(mesh, pod):
    lines = mesh.istioctl("proxy-config", "secret", pod, "-o", "json").stdout
    return json.loads(lines)


def _workload_cert(mesh, pod):
    certs = _secrets(mesh, pod)
    return next(c for c in certs if c.get("subject_alt_names"))


def _ca_roots(mesh, pod):
    return {c["serial_number"] for c in _secrets(mesh, pod) if not c.get("subject_alt_names")}


def _pages_ok(mesh, count):
    return [mesh.page().status for _ in range(count)]


def _plaintext_inbound(mesh, pod):
    """A caller outside the mesh: plaintext straight to the pod's inbound port."""
    address = mesh.topology.pod_address(mesh.topology.pod(pod))
    request = urllib.request.Request(f"http://{address}:15006/health", headers={"Host": "x:9080"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None  # refused: not a TLS client


def test_certificates_carry_spiffe_identities_and_chain_to_the_plugged_root(mesh, plugged):
    _, operator = plugged
    cert = _workload_cert(mesh, "reviews-v2")
    assert cert["subject_alt_names"] == [
        {"uri": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"}
    ]
    # Envoy prints serials as hex bytes (a leading zero kept): compare the numbers.
    assert operator.root.serial_number in {
        int(serial, 16) for serial in _ca_roots(mesh, "reviews-v2")
    }
    # The node agent's served chain ends in the operator's root, through the intermediate.
    status = json.loads(_get(f"http://{mesh.topology.control_address}:15030/debug/secrets"))
    assert any(s["identity"].endswith("/sa/bookinfo-reviews") for s in status)
    assert isinstance(operator.root, x509.Certificate)


def test_sidecars_reach_pilot_over_mutual_tls(mesh):
    for pod in ("productpage-v1", "ratings-v1"):
        address = mesh.topology.pod_address(mesh.topology.pod(pod))
        stats = _get(f"http://{address}:15000/stats?filter=^cluster.xds-grpc.ssl.handshake$")
        assert int(stats.split(":")[1]) >= 1, stats
    assert "(mutual TLS)" in mesh.log("pilot-discovery")


def test_permissive_by_default_takes_mesh_mtls_and_outside_plaintext(mesh):
    out = mesh.istioctl("authn", "tls-check", "productpage-v1", "reviews-v1").stdout
    assert out.splitlines()[1].split()[1:] == ["AUTO", "(mTLS)", "PERMISSIVE", "OK", "(mTLS)"]
    assert _plaintext_inbound(mesh, "details-v1") == 200
    assert set(_pages_ok(mesh, 5)) == {200}


def test_strict_refuses_plaintext_and_the_server_sees_the_caller(mesh):
    mesh.apply(_security("peer-authentication-mesh-strict"))
    try:
        # Envoy acknowledges the new listener before it has warmed (its TLS secret comes over
        # SDS): until then new connections still reach the old, permissive one.
        poll(lambda: _plaintext_inbound(mesh, "details-v1") is None, "plaintext refused", 15)
        pages = [mesh.page() for _ in range(10)]
        assert {p.status for p in pages} == {200}
        assert all("William Shakespeare" in p.body for p in pages)
        # ratings saw reviews' SPIFFE identity (x-forwarded-client-cert from its sidecar).
        assert "peer=spiffe://cluster.local/ns/default/sa/bookinfo-reviews" in mesh.log(
            "ratings-v1"
        )
        assert "peer=spiffe://cluster.local/ns/default/sa/bookinfo-productpage" in mesh.log(
            "details-v1"
        )
    finally:
        mesh.delete(_security("peer-authentication-mesh-strict"))


def test_authorization_policies_allow_and_deny_by_identity_and_method(mesh, tmp_path):
    mesh.apply(_security("productpage-only-viewer"))
    only_reviews = tmp_path / "ratings-from-reviews.yaml"
    only_reviews.write_text(
        "apiVersion: security.istio.io/v1beta1\nkind: AuthorizationPolicy\n"
        "metadata: {name: ratings-from-reviews, namespace: default}\n"
        "spec:\n  selector: {matchLabels: {app: ratings}}\n  action: ALLOW\n  rules:\n"
        '  - from: [{source: {principals: ["cluster.local/ns/default/sa/bookinfo-reviews"]}}]\n'
    )
    mesh.apply(only_reviews)
    try:
        assert mesh.page().status == 200
        login = urllib.request.Request(
            f"http://{mesh.topology.gateway_address}:8080/login",
            data=b"username=jason",
            method="POST",
        )
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(login, timeout=10)
        assert denied.value.code == 403
        assert b"RBAC" in denied.value.read()
        # The right identity passes; productpage's is refused by ratings' sidecar.
        status, _, _ = mesh.through_sidecar("reviews-v2", "http://ratings:9080/ratings/0")
        assert status == 200
        status, body, _ = mesh.through_sidecar("productpage-v1", "http://ratings:9080/ratings/0")
        assert status == 403
        assert "RBAC" in body
    finally:
        mesh.delete(_security("productpage-only-viewer"), only_reviews)


def test_a_workload_with_the_wrong_identity_is_refused_by_san_checks(mesh, tmp_path):
    # A WorkloadEntry claims ratings' pod is a reviews instance: its certificate says
    # bookinfo-ratings, not bookinfo-reviews, so callers must refuse the handshake.
    impostor = tmp_path / "impostor.yaml"
    ratings_ip = mesh.topology.pod_address(mesh.topology.pod("ratings-v1"))
    impostor.write_text(
        "apiVersion: networking.istio.io/v1alpha3\nkind: WorkloadEntry\n"
        "metadata: {name: reviews-impostor, namespace: default}\n"
        f"spec: {{address: {ratings_ip}, serviceAccount: bookinfo-reviews, ports: {{http: 9080}},\n"
        "  labels: {app: reviews, version: v9, security.istio.io/tlsMode: istio}}\n"
        "---\napiVersion: networking.istio.io/v1alpha3\nkind: DestinationRule\n"
        "metadata: {name: reviews}\n"
        "spec: {host: reviews, subsets: [{name: v9, labels: {version: v9}}, {name: v1, labels: {version: v1}}]}\n"
        "---\napiVersion: networking.istio.io/v1alpha3\nkind: VirtualService\n"
        "metadata: {name: reviews}\n"
        "spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews, subset: v9}}]}]}\n"
    )
    mesh.apply(impostor)
    try:
        status, body, _ = mesh.through_sidecar("productpage-v1", "http://reviews:9080/reviews/0")
        assert status == 503, body
        # Envoy counts why: the server's certificate did not carry an expected identity.
        address = mesh.topology.pod_address(mesh.topology.pod("productpage-v1"))
        stats = _get(f"http://{address}:15000/stats?filter=v9.*ssl.fail_verify_san")
        assert any(
            int(line.rsplit(":", 1)[1]) > 0 for line in stats.splitlines() if line.strip()
        ), stats
    finally:
        mesh.delete(impostor)
        mesh.apply("destination-rule-all")


def test_certificates_rotate_while_traffic_flows(mesh):
    serials = {_workload_cert(mesh, "reviews-v1")["serial_number"]}
    statuses = []
    deadline = time.monotonic() + 30
    while len(serials) < 4 and time.monotonic() < deadline:
        statuses += _pages_ok(mesh, 3)
        serials.add(_workload_cert(mesh, "reviews-v1")["serial_number"])
    assert len(serials) >= 4, serials  # three rotations seen by Envoy, no restart
    assert set(statuses) == {200}


def test_traffic_survives_the_ca_going_away_and_the_agent_recovers(mesh):
    (ca,) = [p for p in mesh.mesh.running() if p.name == "istio-ca"]
    os.killpg(ca.pid, signal.SIGKILL)
    try:
        # Past a renewal point with the CA down: the current certs keep serving.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert set(_pages_ok(mesh, 2)) == {200}
        status = json.loads(_get(f"http://{mesh.topology.control_address}:15030/debug/secrets"))
        assert any(s["failures"] for s in status)
    finally:
        asyncio.run(mesh.mesh.restart("istio-ca"))
    before = _workload_cert(mesh, "reviews-v1")["serial_number"]
    deadline = time.monotonic() + 20
    while (
        _workload_cert(mesh, "reviews-v1")["serial_number"] == before
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    assert _workload_cert(mesh, "reviews-v1")["serial_number"] != before
    assert set(_pages_ok(mesh, 5)) == {200}


def _security(name):
    return SECURITY / f"{name}.yaml"


def _get(url):
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
