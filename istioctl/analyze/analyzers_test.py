"""Every analyzer finds its planted problems (testdata/) at the right line, and nothing in
Istio's Bookinfo samples."""

from __future__ import annotations

import pathlib
import re

import pytest

from istioctl import main as istioctl

HERE = pathlib.Path(__file__).parent
TESTDATA = HERE / "testdata"
ROOT = HERE.parents[1]
SERVICES = TESTDATA / "services.yaml"
_LINE = re.compile(r"^(\w+) \[(IST\d{4})\] \((\w+) (\S+) (\S+):(\d+)\) (.*)$")


def analyze(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = istioctl.main(["analyze", "--use-kube=false", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def found(out: str) -> list[tuple[str, str, str, str, str]]:
    """(code, kind, name.namespace, the text of the line pointed at, message) per message."""
    rows = []
    for line in out.splitlines():
        match = _LINE.match(line)
        assert match, f"not a message line: {line!r}"
        _, code, kind, name, file, number, text = match.groups()
        source = pathlib.Path(file).read_text().splitlines()[int(number) - 1].strip()
        rows.append((code, kind, name, source, text))
    return rows


def test_references_that_lead_nowhere(capsys):
    code, out, _ = analyze(capsys, str(SERVICES), str(TESTDATA / "references.yaml"))
    assert code == 79
    assert found(out) == [
        ("IST0101", "VirtualService", "reviews.default", "subset: v9",
         'Referenced host+subset in destinationrule not found: "reviews+v9"'),
        ("IST0101", "VirtualService", "reviews.default", "host: mirror-nowhere",
         'Referenced mirror host not found: "mirror-nowhere"'),
        ("IST0101", "VirtualService", "reviews.default", "host: nowhere",
         'Referenced host not found: "nowhere"'),
        ("IST0101", "VirtualService", "reviews.default", "port: {number: 9999}",
         'Referenced host:port not found: "reviews:9999"'),
        ("IST0101", "VirtualService", "reviews.default", "gateways: [no-such-gateway]",
         'Referenced gateway not found: "no-such-gateway"'),
    ]  # fmt: skip


def test_a_destination_must_pick_one_of_several_ports(capsys):
    code, out, _ = analyze(capsys, str(SERVICES), str(TESTDATA / "ports.yaml"))
    assert code == 79
    assert found(out) == [
        ("IST0112", "VirtualService", "shop.default", "host: shop",
         'This VirtualService routes to a service "shop" that exposes multiple ports '
         "[8080 8443]. Specifying a port in the destination is required to disambiguate."),
    ]  # fmt: skip


def test_gateways(capsys):
    code, out, _ = analyze(capsys, str(SERVICES), str(TESTDATA / "gateways.yaml"))
    assert code == 79
    rows = found(out)
    assert ("IST0104", "Gateway", "odd-port.default", "- port: {number: 8004, name: http2, protocol: HTTP}",
            "The gateway refers to a port that is not exposed on the workload "
            "(pod selector istio=ingressgateway; port 8004)") in rows  # fmt: skip
    assert ("IST0104", "Gateway", "edge.default", "- port: {number: 9000, name: tcp, protocol: TCP}",
            "The gateway refers to a port that is not exposed on the workload "
            "(pod selector app=edge; port 9000)") in rows  # fmt: skip
    assert ("IST0101", "Gateway", "nobody.default", "selector: {app: no-such-gateway}",
            'Referenced selector not found: "app=no-such-gateway"') in rows  # fmt: skip
    conflicts = [r for r in rows if r[0] == "IST0145"]
    assert {r[2] for r in conflicts} == {"edge.default", "edge-copy.default"}
    assert "port 443, hosts [edge.example.com]" in conflicts[0][4]
    assert ("IST0132", "VirtualService", "edge.default", "hosts: [shop.example.com]",
            "one or more host [shop.example.com] defined in VirtualService default/edge not "
            "found in Gateway default/edge.") in rows  # fmt: skip
    assert len(rows) == 6  # port 80 of the system gateway, 443 of edge: fine


def test_schema_validation_errors_point_at_the_field(capsys):
    code, out, _ = analyze(capsys, str(SERVICES), str(TESTDATA / "schema.yaml"))
    assert code == 79
    assert found(out) == [
        ("IST0106", "VirtualService", "ratings.default", "- route:",
         "Schema validation error: spec.http[0].route: total destination weight = 0"),
    ]  # fmt: skip


def test_kubernetes_objects(capsys):
    code, out, _ = analyze(capsys, "-A", str(TESTDATA / "kubernetes.yaml"))
    assert code == 0  # warnings and infos only; the default failure threshold is Error
    assert found(out) == [
        ("IST0102", "Namespace", "shop", "name: shop",
         "The namespace is not enabled for Istio injection. Run 'kubectl label namespace shop "
         "istio-injection=enabled' to enable it, or 'kubectl label namespace shop "
         "istio-injection=disabled' to explicitly mark it as not needing injection."),
        ("IST0103", "Pod", "web.injected", "containers:",
         "The pod web is missing the Istio proxy. This can often be resolved by restarting "
         "or redeploying the workload."),
        ("IST0108", "Pod", "web.injected", 'sidecar.istio.io/bogus: "true"',
         "Unknown annotation: sidecar.istio.io/bogus"),
        ("IST0107", "Service", "web.injected", 'sidecar.istio.io/inject: "false"',
         "Misplaced annotation: sidecar.istio.io/inject can only be applied to Pod"),
        ("IST0118", "Service", "web.injected", "- {name: web, port: 80, targetPort: 8080}",
         "Port name web (port: 80, targetPort: 8080) doesn't follow the naming convention "
         "of Istio port."),
    ]  # fmt: skip
    code, _, _ = analyze(capsys, "-A", "--failure-threshold", "Warning", str(TESTDATA / "kubernetes.yaml"))  # fmt: skip
    assert code == 79


def test_sidecars(capsys):
    code, out, _ = analyze(capsys, str(SERVICES), str(TESTDATA / "sidecars.yaml"))
    assert code == 79
    codes = [(r[0], r[2]) for r in found(out)]
    assert codes == [
        ("IST0111", "default-a.default"),
        ("IST0111", "default-b.default"),
        ("IST0101", "nobody.default"),
        ("IST0110", "reviews-a.default"),
        ("IST0110", "reviews-b.default"),
    ]
    assert '[reviews-a reviews-b] in namespace "default" select the same workload pod "reviews-v1"' in out  # fmt: skip


def test_mesh_conflicts_regexes_tls_and_policies(capsys):
    code, out, _ = analyze(capsys, str(SERVICES), str(TESTDATA / "misc.yaml"))
    assert code == 79
    rows = {(r[0], r[2]) for r in found(out)}
    assert {
        ("IST0109", "reviews-a.default"),
        ("IST0109", "reviews-b.default"),
        ("IST0122", "reviews-a.default"),
        ("IST0128", "shop.default"),
        ("IST0127", "nobody.default"),
    } <= rows
    assert "The VirtualServices default/reviews-a,default/reviews-b associated with mesh gateway define the same host */reviews.default.svc.cluster.local" in out  # fmt: skip
    assert 'Field "uri" regular expression invalid: "/(a"' in out


def test_without_any_workload_selectors_are_not_judged(capsys):
    # Files on their own (a user's app config, no pods): "selects nothing" would be noise.
    _, out, _ = analyze(capsys, str(TESTDATA / "misc.yaml"))
    assert "IST0127" not in out
    _, out, _ = analyze(capsys, str(TESTDATA / "sidecars.yaml"))
    assert "IST0101" not in out
    assert "IST0111" in out


# The samples a user applies together on one platform. (The Consul and Eureka routing samples
# name hosts only those registries know, and reuse the same resource names, so they are not
# analyzed beside the others, as no one applies them together.)
_SAMPLE_SETS = {
    "local": ("networking", "policy", "security", "platform/local"),
    "kube": ("networking", "policy", "security", "platform/kube"),
}


@pytest.mark.parametrize("platform", sorted(_SAMPLE_SETS))
def test_nothing_in_istios_bookinfo_samples(capsys, platform):
    bookinfo = ROOT / "samples" / "bookinfo"
    dirs = [str(bookinfo / d) for d in _SAMPLE_SETS[platform]]
    code, out, err = analyze(capsys, "-R", *dirs)
    assert (code, out) == (0, "")
    assert err.endswith("\u2714 No validation issues found when analyzing namespace: default.\n")
    code, out, _ = analyze(capsys, "-A", "-R", *dirs)
    assert (code, out) == (0, "")


def test_a_gateway_credential_must_be_a_secret_in_the_gateway_namespace(capsys):
    code, out, _ = analyze(capsys, "-A", str(TESTDATA / "gateway-secrets.yaml"))
    assert code == 79
    # shop-credential is there; elsewhere-credential is, but not where the gateway runs.
    assert found(out) == [
        ("IST0101", "Gateway", "shop.istio-system", "credentialName: no-such-credential",
         'Referenced credentialName not found: "no-such-credential"'),
        ("IST0101", "Gateway", "shop.istio-system", "credentialName: elsewhere-credential",
         'Referenced credentialName not found: "elsewhere-credential"'),
    ]  # fmt: skip
