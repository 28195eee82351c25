"""The local platform as a cluster whose node gives every pod its own network namespace.

The same user journey as kube_platform_test.py (Istio's bookinfo.yaml with kubectl, the page
through the gateway, scale reviews-v3 to 0 and back, delete a pod, kubectl logs), run by the
kubelet with the netns runtime: each pod in its own namespace on the node's bridge, the
control plane on the bridge's address, the gateway in the host's namespace reaching the pods
through the bridge. Interception is on, as `make bookinfo` has it where the machine allows:
every pod runs istio-init (Istio's iptables rules), apps get no proxy settings and call
`http://reviews:9080` by Service name; the gateway dials each pod on its target port, which
the pod's rules send to the sidecar's 15006. An app's plain request is routed by a
VirtualService, and `outboundTrafficPolicy: REGISTRY_ONLY` in the `istio` ConfigMap refuses
an unregistered destination (a server in a namespace this test makes, on the bridge) until a
ServiceEntry registers it, with nothing restarted. Also: a kubelet killed with SIGKILL is
started again by the watchdog and removes what the dead one left by name, and `down` leaves no
namespace, link or /etc/netns folder behind. Names start with `pn<MESH_TEST_NET>-47-` (the
external server's `cd<MESH_TEST_NET>-x47`), pods are in 10.<100+MESH_TEST_NET>.47.0/24. Needs
root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from pkg.testing.wait import poll
from tests.e2e.externalhost import external_http_server
from tests.e2e.kube_platform_test import (
    POD_START,
    Cluster,
    bookinfo,
    test_a_deleted_pod_is_replaced_and_the_page_keeps_working,
    test_kubectl_logs,
    test_scale_reviews_v3_to_zero_and_back,
)
from tests.e2e.meshtest import (
    NEEDS_NETNS,
    ROOT,
    MeshUnderTest,
    captured_pods,
    loopback_subnet,
    reachable_run_dir,
)
from tools.local import launcher, netnssandbox, observability
from tools.local.podnetwork import NodeNetwork

__all__ = [  # the journey's steps, collected here too, against this module's cluster
    "bookinfo",
    "test_a_deleted_pod_is_replaced_and_the_page_keeps_working",
    "test_kubectl_logs",
    "test_scale_reviews_v3_to_zero_and_back",
]

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(47)
NETWORK = NodeNetwork(prefix=f"pn{NET}-47-", cidr=f"10.{100 + NET}.47.0/24")

pytestmark = NEEDS_NETNS


def _leftovers() -> list[str]:
    return (
        netnssandbox.namespaces(NETWORK)
        + netnssandbox.links(NETWORK)
        + [p.name for p in pathlib.Path("/etc/netns").glob(f"{NETWORK.prefix}*")]
    )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with reachable_run_dir(f"cd{NET}-kube-netns-mesh") as run_dir:
        mesh = MeshUnderTest(
            run_dir,
            SUBNET,
            platform="kube",
            bookinfo=False,
            **captured_pods(NETWORK),
            observability=True,  # Prometheus scraping the captured pods, their spans in Zipkin
        )
        with mesh:
            cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
            try:
                yield cluster
            finally:
                for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                    if log.parent.parent.name.startswith("default_"):
                        print(f"--- {log.parent.parent.name}/{log.name} ---")
                        print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")
        assert _leftovers() == []  # `down` removed the bridge and every pod's namespace


def _netns_of(pod: dict[str, Any]) -> str:
    return NETWORK.netns(pod["metadata"]["uid"])


def _in_netns(ns: str, *command: str) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", ns, *command], capture_output=True, text=True, timeout=10
    ).stdout


def test_each_pod_has_its_own_namespace_on_the_bridge(cluster: Cluster, bookinfo: str):
    table = [line.split() for line in cluster.run("get", "pods").splitlines()]
    assert {(row[1], row[2]) for row in table[1:]} == {("2/2", "Running")}
    pods = cluster.pods()
    addresses = {pod["status"]["podIP"] for pod in pods}
    assert len(addresses) == len(pods) == 6
    assert all(ipaddress.IPv4Address(a) in NETWORK.network for a in addresses)
    assert {p["status"]["hostIP"] for p in pods} == {NETWORK.gateway}
    assert sorted(_netns_of(p) for p in pods) == sorted(netnssandbox.namespaces(NETWORK))
    (productpage,) = cluster.ready("app=productpage")
    ns = _netns_of(productpage)
    assert f"inet {productpage['status']['podIP']}/24" in _in_netns(ns, "ip", "-o", "addr")
    # Service names resolve in the pod to their cluster IPs, as cluster DNS would answer.
    reviews_ip = cluster.run("get", "service", "reviews", "-o", "jsonpath={.spec.clusterIP}")
    assert _in_netns(ns, "getent", "hosts", "reviews").split()[0] == reviews_ip
    # The app runs as its image's user, the agent and Envoy as Istio's istio-proxy (1337:1337,
    # the uid and gid Istio's rules exclude), none of them as root.
    owners = subprocess.run(
        ["ps", "-o", "uid=,gid=,comm=", "-p", ",".join(_pids(ns))],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    seen = {tuple(line.split()) for line in owners.splitlines() if line.strip()}
    assert ("1000", "0", "python") in seen  # productpage's image runs as USER 1000
    assert ("1337", "1337", "envoy") in seen
    assert ("1337", "1337", "python") in seen  # pilot-agent
    assert not any(uid == "0" for uid, _, _ in seen)
    # Every version answers through the gateway, from the pods behind the bridge.
    versions = {page.reviews_version for page in cluster.pages(30)}
    assert versions == {"v1", "v2", "v3"}


def _pids(ns: str) -> list[str]:
    return subprocess.run(
        ["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10
    ).stdout.split()


def test_a_deleted_pods_namespace_goes_with_it(cluster: Cluster, bookinfo: str):
    (pod,) = cluster.ready("app=details")
    ns = _netns_of(pod)
    assert ns in netnssandbox.namespaces(NETWORK)
    cluster.run("delete", "pod", pod["metadata"]["name"])
    poll(lambda: ns not in netnssandbox.namespaces(NETWORK), "its namespace removed", POD_START)
    assert NETWORK.host_link(pod["metadata"]["uid"]) not in netnssandbox.links(NETWORK)
    poll(lambda: len(cluster.ready("app=details")) == 1, "a new details pod ready", POD_START)


def test_a_killed_kubelets_leftovers_are_reaped_by_the_next(cluster: Cluster, bookinfo: str):
    topology = cluster.mesh.topology
    (kubelet,) = [s for s in launcher.read_state(topology.run_dir) if s.name == "kubelet"]
    before = set(netnssandbox.namespaces(NETWORK))
    os.kill(kubelet.pid, signal.SIGKILL)

    def restarted() -> bool:
        state = {s.name: s for s in launcher.read_state(topology.run_dir)}
        return state["kubelet"].pid != kubelet.pid and state["kubelet"].alive()

    poll(restarted, "the watchdog's new kubelet", POD_START)
    log = topology.log_dir / "kubelet.log"
    poll(
        lambda: "removed what an earlier kubelet left" in log.read_text(),
        "the new kubelet reaping the old one's namespaces",
        POD_START,
    )
    poll(
        lambda: len(cluster.ready("")) == 6 and cluster.mesh.page().status == 200,
        "every pod running again and the page answering",
        POD_START,
    )
    # The same pods (their uids name their namespaces), in namespaces made anew.
    assert set(netnssandbox.namespaces(NETWORK)) == before


# What an app does, with no proxy variables at all in its environment: one plain HTTP GET, as
# the app's user (captured by the pod's rules: only the proxy's 1337 is let through).
_GET = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers=dict([sys.argv[2].split(":", 1)]) if sys.argv[2:] else {})
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        print(json.dumps({"status": answer.status, "body": answer.read().decode()}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": error.read().decode()}))
except OSError as error:
    print(json.dumps({"error": str(error)}))
"""
APP_USER = "1000"  # as the kubelet runs an image USER 1000 (its group stays 0)


def app_get(ns: str, url: str, host: str = "") -> dict[str, Any]:
    """GET `url` from inside the pod's namespace as its app would: its user, `env -i`."""
    command = ["ip", "netns", "exec", ns, "env", "-i", "setpriv", f"--reuid={APP_USER}",
               "--clear-groups", "--", sys.executable, "-c", _GET,
               url, *([f"Host:{host}"] if host else [])]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _apply(cluster: Cluster, text: str) -> None:
    manifest = cluster.mesh.topology.run_dir / f"applied-{time.monotonic_ns()}.yaml"
    manifest.write_text(text)
    cluster.run("apply", "-f", str(manifest))


def test_an_apps_plain_request_is_routed_by_a_virtual_service(cluster: Cluster, bookinfo: str):
    (productpage,) = cluster.ready("app=productpage")
    ns = _netns_of(productpage)
    # The app has no proxy settings: istio-init's rules are in its namespace, nothing else.
    assert "-A ISTIO_OUTPUT" in _in_netns(ns, "iptables", "-t", "nat", "-S")
    app_pid = next(p for p in _pids(ns) if "productpage" in _cmdline(p))
    environ = pathlib.Path(f"/proc/{app_pid}/environ").read_bytes().decode(errors="replace")
    assert "http_proxy" not in environ.lower()

    def colors(count: int = 6) -> set[str]:
        seen = set()
        for _ in range(count):
            answer = app_get(ns, "http://reviews:9080/reviews/0")
            assert answer.get("status") == 200, answer
            ratings = [r.get("rating", {}) for r in json.loads(answer["body"])["reviews"]]
            seen.add(ratings[0].get("color", "none"))
        return seen

    assert len(colors(12)) > 1  # no rule: every version of reviews
    rules = ("destination-rule-all.yaml", "virtual-service-reviews-v3.yaml")
    paths = [str(ROOT / "samples/bookinfo/networking" / name) for name in rules]
    try:
        for path in paths:
            cluster.run("apply", "-f", path)
        poll(lambda: colors() == {"red"}, "every plain request routed to v3 (red stars)", 30)
        assert colors(12) == {"red"}
    finally:
        for path in reversed(paths):
            cluster.run("delete", "-f", path, check=False)
    poll(lambda: len(colors()) > 1, "the rule gone, every version again", 30)


def _cmdline(pid: str) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


EXTERNAL_NS = f"cd{NET}-x47"  # the server outside the mesh (and its link on the bridge)
# The range's last address: the kubelet gives this module's few pods addresses from the first.
EXTERNAL_IP = str(NETWORK.network.broadcast_address - 1)
EXTERNAL_HOST = "httpbin.external.test"


@pytest.fixture
def external(cluster: Cluster) -> Iterator[str]:
    """An HTTP server outside the mesh: no sidecar, no injection, in a namespace of its own
    on the node's bridge (as a machine on the pods' network would be)."""
    with external_http_server(
        namespace=EXTERNAL_NS,
        link=f"cd{NET}-x47h",
        network=NETWORK,
        ip=EXTERNAL_IP,
        port=8000,
        label="external",
        log=cluster.mesh.topology.log_dir / "external.log",
    ) as url:
        yield url


def _mesh_config(cluster: Cluster) -> str:
    found = json.loads(cluster.run("get", "configmap", "istio", "-n", "istio-system", "-o", "json"))
    return found["data"]["mesh"]


def _with_policy(mesh: str, mode: str) -> str:
    config = yaml.safe_load(mesh) or {}
    config["outboundTrafficPolicy"] = {"mode": mode}
    configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "istio", "namespace": "istio-system"},
                 "data": {"mesh": yaml.safe_dump(config)}}  # fmt: skip
    return yaml.safe_dump(configmap)


SERVICE_ENTRY = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata:
  name: httpbin-external
spec:
  hosts: [{EXTERNAL_HOST}]
  location: MESH_EXTERNAL
  ports:
  - {{number: 8000, name: http, protocol: HTTP}}
  resolution: STATIC
  endpoints:
  - address: {EXTERNAL_IP}
"""


def test_registry_only_refuses_the_unregistered_until_a_service_entry(
    cluster: Cluster, bookinfo: str, external: str
):
    (ratings,) = cluster.ready("app=ratings")
    ns = _netns_of(ratings)
    processes = {s.name: s.pid for s in launcher.read_state(cluster.mesh.topology.run_dir)}
    pods = {p["metadata"]["uid"]: _pids(_netns_of(p)) for p in cluster.pods()}

    def reached() -> tuple[bool, bool]:
        """(the server by its address, unregistered; the server by its registered host)."""
        plain = app_get(ns, external)
        named = app_get(ns, external, host=EXTERNAL_HOST)
        return (
            plain.get("status") == 200 and json.loads(plain["body"])["name"] == "external",
            named.get("status") == 200 and json.loads(named["body"])["name"] == "external",
        )

    assert reached() == (True, True)  # ALLOW_ANY, the default: PassthroughCluster
    mesh = _mesh_config(cluster)
    try:
        _apply(cluster, _with_policy(mesh, "REGISTRY_ONLY"))
        poll(lambda: reached() == (False, False), "REGISTRY_ONLY refusing both", 30)
        refused = app_get(ns, external)
        assert refused.get("status") == 502 or "error" in refused, refused
        _apply(cluster, SERVICE_ENTRY)
        poll(lambda: reached() == (False, True), "the ServiceEntry's host let through", 30)
    finally:
        cluster.run("delete", "serviceentry", "httpbin-external", check=False)
        _apply(cluster, _with_policy(mesh, "ALLOW_ANY"))
    poll(lambda: reached() == (True, True), "ALLOW_ANY again", 30)
    # Nothing restarted: the same control plane processes, the same pods' processes.
    assert {s.name: s.pid for s in launcher.read_state(cluster.mesh.topology.run_dir)} == processes
    assert {p["metadata"]["uid"]: _pids(_netns_of(p)) for p in cluster.pods()} == pods


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def test_prometheus_scrapes_the_captured_pods_and_their_spans_reach_zipkin(
    cluster: Cluster, bookinfo: str
):
    topology = cluster.mesh.topology
    pods = {p["status"]["podIP"] for p in cluster.ready("")}

    def healthy_pod_targets() -> set[tuple[str, str]]:
        found = _get_json(f"{observability.prometheus_url(topology)}/api/v1/targets")
        return {
            (t["scrapePool"], t["labels"]["instance"].rsplit(":", 1)[0])
            for t in found["data"]["activeTargets"]
            if t["health"] == "up" and t["scrapePool"] in ("envoy-stats", "kubernetes-pods")
        }

    # Every pod's 15090 (Envoy) and 15020 (the agent's merged stats), past its capture.
    wanted = {(job, ip) for job in ("envoy-stats", "kubernetes-pods") for ip in pods}
    poll(lambda: wanted <= healthy_pod_targets(), "every pod's stats scraped", 60)
    cluster.pages(5)
    zipkin = observability.zipkin_url(topology)

    def span_addresses() -> set[str]:
        traces = _get_json(f"{zipkin}/api/v2/traces?serviceName=productpage&limit=20")
        return {s.get("localEndpoint", {}).get("ipv4", "") for t in traces for s in t}

    # productpage, details, reviews and ratings report their spans from their pods' addresses.
    poll(lambda: len(span_addresses() & pods) >= 4, "spans from the captured pods", 30)
