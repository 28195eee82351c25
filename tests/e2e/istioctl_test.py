"""istioctl's verbs against a live local mesh: version, analyze, x describe pod, x authz check,
dashboard, bug-report, validate, --kubeconfig/--context.

One mesh for the whole module (starting one costs tens of seconds); each test leaves the
config as it found it.
"""

from __future__ import annotations

import json
import pathlib
import tarfile

import pytest

from pkg.version import buildinfo
from tests.e2e.meshtest import ROOT, MeshUnderTest, loopback_subnet

SUBNET = loopback_subnet(8)
NETWORKING = ROOT / "samples/bookinfo/networking"
SECURITY = ROOT / "samples/bookinfo/security"
PROXIES = 7  # six Bookinfo pods and the ingress gateway


@pytest.fixture(scope="module")
def mesh(tmp_path_factory):
    with MeshUnderTest(tmp_path_factory.mktemp("mesh"), SUBNET) as mesh:
        mesh.apply("destination-rule-all")
        yield mesh


def test_version_of_client_control_plane_and_proxies(mesh):
    version = buildinfo.VERSION
    out = mesh.istioctl("version").stdout
    assert out.splitlines() == [
        f"client version: {version}",
        f"control plane version: {version}",
        f"data plane version: {version} ({PROXIES} proxies)",
    ]
    data = json.loads(mesh.istioctl("version", "-o", "json").stdout)
    assert data["clientVersion"]["version"] == version
    assert data["meshVersion"] == [{"Component": "pilot", "Info": buildinfo.get().to_json()}]
    assert sorted(p["ID"] for p in data["dataPlaneVersion"]) == sorted(
        [f"{p.name}.default" for p in mesh.topology.pods] + ["istio-ingressgateway.istio-system"]
    )
    assert {p["IstioVersion"] for p in data["dataPlaneVersion"]} == {version}
    assert mesh.istioctl("version", "--remote=false").stdout == f"{version}\n"
    long = mesh.istioctl("version", "--short=false").stdout.splitlines()
    assert long[1].startswith('pilot version: version.BuildInfo{Version:"')
    assert long[2].startswith('data plane version: version.ProxyInfo{ID:"')


def test_analyze_the_live_store_and_files_over_it(mesh, tmp_path):
    clean = mesh.istioctl("analyze", "-A")
    assert (clean.stdout, clean.stderr) == (
        "",
        "\u2714 No validation issues found when analyzing all namespaces.\n",
    )
    planted = tmp_path / "reviews.yaml"
    planted.write_text(
        (NETWORKING / "virtual-service-reviews-v3.yaml").read_text().replace("v3", "v9")
    )
    # As a file over the store: found, with its line; nothing written.
    found = mesh.istioctl("analyze", str(planted), check=False)
    assert found.returncode == 79
    assert found.stdout == (
        f"Error [IST0101] (VirtualService reviews.default {planted}:12) Referenced "
        'host+subset in destinationrule not found: "reviews+v9"\n'
    )
    # In the store (a VirtualService the store accepts: only analysis sees the dangling
    # subset): found without a file, and the fix given as a file clears it.
    mesh.apply(planted)
    try:
        stored = mesh.istioctl("analyze", check=False)
        assert stored.returncode == 79
        assert "(VirtualService reviews.default) Referenced host+subset" in stored.stdout
        fixed = mesh.istioctl("analyze", str(NETWORKING / "virtual-service-reviews-v3.yaml"))
        assert fixed.stdout == ""
        assert json.loads(mesh.istioctl("analyze", "-o", "json").stdout)[0]["code"] == "IST0101"
    finally:
        mesh.delete(planted)
    assert mesh.istioctl("analyze").stdout == ""


def test_describe_pod(mesh):
    mesh.apply("virtual-service-reviews-80-20")
    try:
        out = mesh.istioctl("x", "describe", "pod", "reviews-v1").stdout
    finally:
        mesh.delete("virtual-service-reviews-80-20")
    lines = out.splitlines()
    assert lines[0] == "Pod: reviews-v1"
    assert lines[1] == "   Pod Ports: 9080 (reviews), 15090 (istio-proxy)"
    for expected in (
        "Service: reviews",
        "   Port: http 9080/HTTP targets pod port 9080",
        'DestinationRule: reviews for "reviews"',
        "   Matching subsets: v1",
        "      (Non-matching subsets v2,v3)",
        "VirtualService: reviews",
        '   Route to host "reviews" subset "v1" with weight 80%',
        "   1 additional destination(s) that will not reach this pod",
        "Effective PeerAuthentication:",
        "   Workload mTLS mode: PERMISSIVE",
    ):
        assert expected in lines, f"{expected!r} not in:\n{out}"
    productpage = mesh.istioctl("x", "describe", "pod", "productpage-v1").stdout
    assert f"Exposed on Ingress Gateway http://{mesh.topology.gateway_address}:8080" in productpage
    missing = mesh.istioctl("x", "describe", "pod", "nope", check=False)
    assert missing.returncode == 1
    assert 'pod "nope.default" not found' in missing.stderr


def test_authz_check_reads_the_sidecars_config(mesh):
    assert mesh.istioctl("x", "authz", "check", "productpage-v1").stdout.splitlines() == [
        "ACTION   AuthorizationPolicy   RULES"
    ]
    viewer = SECURITY / "productpage-only-viewer.yaml"
    mesh.apply(viewer)
    try:
        out = mesh.istioctl("x", "authz", "check", "productpage-v1").stdout
        assert out.splitlines()[1].split() == ["ALLOW", "productpage-viewer.default", "1"]
        assert "RBAC policies: productpage-viewer.default (ALLOW)" in (
            mesh.istioctl("x", "describe", "pod", "productpage-v1").stdout
        )
        assert len(mesh.istioctl("x", "authz", "check", "reviews-v1").stdout.splitlines()) == 1
    finally:
        mesh.delete(viewer)


def test_dashboards(mesh):
    productpage = mesh.topology.pod_address(mesh.topology.pod("productpage-v1"))
    envoy = mesh.istioctl("dashboard", "envoy", "productpage-v1", "--browser=false")
    assert envoy.stdout == f"http://{productpage}:15000\n"
    agent = mesh.istioctl("d", "controlz", "reviews-v2", "--browser=false")
    reviews = mesh.topology.pod_address(mesh.topology.pod("reviews-v2"))
    assert agent.stdout == f"http://{reviews}:15020/healthz/ready\n"
    pilot = mesh.istioctl("dashboard", "controlz", "istiod", "--browser=false")
    assert pilot.stdout == f"{mesh.topology.pilot_http_url}/debug/syncz\n"
    # Nothing listens on this test subnet's 9090: the command says so and fails.
    nowhere = f"{SUBNET}.250:9090"
    prometheus = mesh.istioctl("dashboard", "prometheus", "--address", nowhere, check=False)
    assert prometheus.returncode == 1
    assert prometheus.stderr.startswith(
        f"error: nothing answers at http://{nowhere}: is Prometheus (make bookinfo starts it) running?"
    )
    page = mesh.istioctl("dashboard", "mesh", "--address", nowhere, check=False)
    assert page.returncode == 1
    assert "is the mesh page" in page.stderr
    gone = mesh.istioctl("dashboard", "envoy", "nope", check=False)
    assert gone.returncode == 1
    assert 'pod "nope.default" not found' in gone.stderr


def test_bug_report(mesh, tmp_path):
    run = mesh.istioctl(
        "bug-report", "--run-dir", str(mesh.topology.run_dir), "--output-dir", str(tmp_path)
    )
    archive = tmp_path / "bug-report.tar.gz"
    assert run.stdout == f"{archive}\n"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
        errors = tar.extractfile("bug-report/errors.txt").read().decode()
        versions = json.load(tar.extractfile("bug-report/versions.json"))
        dump = json.load(tar.extractfile("bug-report/proxies/productpage-v1.default/config_dump.json"))  # fmt: skip
        resources = tar.extractfile("bug-report/resources/serviceentries.yaml").read().decode()
    assert errors == ""
    for expected in (
        "bug-report/logs/pilot-discovery.log",
        "bug-report/logs/config-store.log",
        "bug-report/logs/reviews-v2-proxy.log",
        "bug-report/logs/pods/reviews-v2/envoy.log",
        "bug-report/pilot/syncz.json",
        "bug-report/pilot/configz.json",
        "bug-report/proxies/istio-ingressgateway.istio-system/server_info.json",
        "bug-report/proxies/ratings-v1.default/stats.txt",
        "bug-report/resources/destinationrules.yaml",
    ):
        assert expected in names, expected
    assert len(versions["dataPlaneVersion"]) == PROXIES
    assert versions["meshVersion"][0]["Info"]["version"] == buildinfo.VERSION
    assert any("ListenersConfigDump" in c["@type"] for c in dump["configs"])
    assert "name: reviews" in resources


def test_validate_and_kubeconfig_contexts(mesh, tmp_path):
    good = mesh.istioctl("validate", "-f", str(NETWORKING / "virtual-service-all-v1.yaml"))
    assert good.stdout.endswith(" is valid\n")
    config = tmp_path / "kubeconfig"
    config.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: local\n"
        f"clusters:\n- name: local\n  cluster: {{server: '{mesh.topology.config_store_url}'}}\n"
        f"- name: gone\n  cluster: {{server: 'http://{SUBNET}.251:8001'}}\n"
        "contexts:\n- name: local\n  context: {cluster: local, namespace: istio-system}\n"
        "- name: gone\n  context: {cluster: gone}\n"
    )
    # The kubeconfig named on the command line wins over $ISTIO_CONFIG_STORE (set by
    # mesh.istioctl), and its context's namespace is the default one.
    listed = mesh.istioctl("--kubeconfig", str(config), "get", "workloadentries")
    assert [row.split()[0] for row in listed.stdout.splitlines()[1:]] == ["istio-ingressgateway"]
    listed = mesh.istioctl("get", "se", "-c", str(config), "-n", "default")
    assert "reviews" in listed.stdout
    gone = mesh.istioctl("--kubeconfig", str(config), "--context", "gone", "get", "se", check=False)  # fmt: skip
    assert gone.returncode == 1
    assert f"cannot reach the config store at http://{SUBNET}.251:8001" in gone.stderr
    missing = mesh.istioctl("--context", "nope", "-c", str(config), "get", "se", check=False)
    assert (missing.returncode, missing.stderr) == (1, 'error: context "nope" does not exist\n')


def test_an_invalid_write_still_is_refused_through_the_kubeconfig(mesh, tmp_path):
    # A smoke check that writes travel the same way through the kubeconfig's store.
    config = tmp_path / "kubeconfig"
    config.write_text(
        "current-context: c\n"
        f"clusters:\n- name: k\n  cluster: {{server: '{mesh.topology.config_store_url}'}}\n"
        "contexts:\n- name: c\n  context: {cluster: k}\n"
    )
    bad = tmp_path / "bad.yaml"
    sample = pathlib.Path(NETWORKING / "virtual-service-reviews-80-20.yaml").read_text()
    bad.write_text(sample.replace("weight: 20", "weight: 0").replace("weight: 80", "weight: 0"))
    refused = mesh.istioctl("-c", str(config), "apply", "-f", str(bad), check=False)
    assert refused.returncode == 1
    assert "total destination weight = 0" in refused.stderr
