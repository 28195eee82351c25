"""Istio's DNS proxying on the local platform: an app resolves ServiceEntry hosts by name.

The kube platform with pods in network namespaces and istio-init's capture. The client pod
(fortio's image, as Istio's sleep in its DNS proxying task) has `ISTIO_META_DNS_CAPTURE` and
`ISTIO_META_DNS_AUTO_ALLOCATE` in its `proxy.istio.io/config` proxyMetadata: istio-init sends
its DNS (port 53 to its resolv.conf nameserver) to the agent's 15053, which answers from
Pilot's name table (NDS) and forwards the rest to the node's DNS server (the kubelet's, on
the bridge), which asks this machine's resolvers. Nothing in the pod's hosts file names the
hosts and the app has no proxy settings.

The "external" host is a namespace of its own on the bridge (no sidecar) with an HTTP server
on :80 and two tcp-echo servers (:9000 `one`, :9001 `two`). ServiceEntries without
`addresses` register `external.example.test` (HTTP) and `one.example.test`, `two.example.test`
(TCP, both port 9000): the agent answers each with the address Pilot auto-allocated in
240.240.0.0/16, and the sidecar has a TCP listener per address, so the two TCP hosts on one
port reach their own servers. Names start with `cd<MESH_TEST_NET>-64-`, pods are in
10.<100+MESH_TEST_NET>.64.0/24. Needs root, `ip`, iptables and setpriv.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from pkg.testing.wait import poll
from tests.e2e.externalhost import external_http_server
from tests.e2e.kube_platform_test import POD_START, Cluster
from tests.e2e.meshtest import (
    NEEDS_NETNS,
    ROOT,
    MeshUnderTest,
    captured_pods,
    loopback_subnet,
    reachable_run_dir,
)
from tools.local import netnssandbox
from tools.local.podnetwork import NodeNetwork

NET = int(os.environ.get("MESH_TEST_NET", "0"))
SUBNET = loopback_subnet(64)
NETWORK = NodeNetwork(prefix=f"cd{NET}-64-", cidr=f"10.{100 + NET}.64.0/24")
FORTIO = ROOT / "samples/httpbin/sample-client/fortio-deploy.yaml"
APP_USER = "1000"  # as the kubelet runs an image's USER 1000 (its group stays 0)
EXTERNAL_NS = f"cd{NET}-x64"
EXTERNAL_IP = str(NETWORK.network.broadcast_address - 1)
HOST = "external.example.test"

pytestmark = NEEDS_NETNS

ENTRIES = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: external}}
spec:
  hosts: [{HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http, protocol: HTTP}}]
  endpoints: [{{address: {EXTERNAL_IP}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: tcp-one}}
spec:
  hosts: [one.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints: [{{address: {EXTERNAL_IP}}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: tcp-two}}
spec:
  hosts: [two.example.test]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 9000, name: tcp, protocol: TCP}}]
  endpoints: [{{address: {EXTERNAL_IP}, ports: {{tcp: 9001}}}}]
"""

# The workload's own Sidecar: only registered destinations (Istio's REGISTRY_ONLY).
REGISTRY_ONLY = """\
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default}
spec:
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
"""

_APP = """
import json, socket, sys, urllib.error, urllib.request
what, target = sys.argv[1], sys.argv[2]
try:
    if what == "resolve":
        infos = socket.getaddrinfo(target, 80, socket.AF_INET, socket.SOCK_STREAM)
        print(json.dumps({"addresses": sorted({i[4][0] for i in infos})}))
    elif what == "get":
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(target, timeout=10) as answer:
            print(json.dumps({"status": answer.status, "body": answer.read().decode()}))
    else:
        host, port = target.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(b"hello\\n")
            print(json.dumps({"reply": conn.makefile().readline().strip()}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code}))
except OSError as error:
    print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
"""


def _client_manifest() -> str:
    """fortio's Deployment (Istio's sample) with DNS capture and auto-allocation asked for."""
    documents = list(yaml.safe_load_all(FORTIO.read_text()))
    for document in documents:
        if document.get("kind") == "Deployment":
            template = document["spec"]["template"]["metadata"]
            template.setdefault("annotations", {})["proxy.istio.io/config"] = (
                "proxyMetadata:\n"
                '  ISTIO_META_DNS_CAPTURE: "true"\n'
                '  ISTIO_META_DNS_AUTO_ALLOCATE: "true"\n'
            )
    return yaml.safe_dump_all(documents)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with reachable_run_dir(f"cd{NET}-dns-mesh") as run_dir:
        mesh = MeshUnderTest(
            run_dir, SUBNET, platform="kube", bookinfo=False, **captured_pods(NETWORK)
        )
        with mesh:
            cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
            try:
                manifest = run_dir / "dns-client.yaml"
                manifest.write_text(_client_manifest())
                entries = run_dir / "entries.yaml"
                entries.write_text(ENTRIES)
                cluster.run("label", "namespace", "default", "istio-injection=enabled")
                cluster.run("apply", "-f", str(entries), "-f", str(manifest))
                poll(functools.partial(cluster.ready, "app=fortio"), "fortio ready", POD_START)
                yield cluster
            finally:
                for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                    print(f"--- {log.parent.parent.name}/{log.name} ---")
                    print(*log.read_text(errors="replace").splitlines()[-60:], sep="\n")
        assert netnssandbox.namespaces(NETWORK) == []


@pytest.fixture(scope="module")
def external(cluster: Cluster) -> Iterator[str]:
    with external_http_server(
        namespace=EXTERNAL_NS,
        link=f"cd{NET}-x64h",
        network=NETWORK,
        ip=EXTERNAL_IP,
        port=80,
        label="external",
        log=cluster.mesh.topology.log_dir / "external.log",
        also=(f"echo:{EXTERNAL_IP}:9000:one", f"echo:{EXTERNAL_IP}:9001:two"),
    ) as url:
        yield url


def app(cluster: Cluster, what: str, target: str) -> dict[str, Any]:
    """One call from the client's app: its user, its pod's namespace, nothing in its env."""
    (client,) = cluster.ready("app=fortio")
    ns = NETWORK.netns(client["metadata"]["uid"])
    command = ["ip", "netns", "exec", ns, "env", "-i", "setpriv", f"--reuid={APP_USER}",
               "--clear-groups", "--", sys.executable, "-c", _APP, what, target]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_pod_knows_the_hosts_only_through_its_agent(cluster: Cluster) -> None:
    (client,) = cluster.ready("app=fortio")
    folder = next((cluster.mesh.topology.run_dir / "pods").glob("default_fortio-deploy-*"))
    assert HOST not in (folder / "etc-hosts").read_text()
    resolv = (folder / "resolv.conf").read_text()
    assert f"nameserver {NETWORK.gateway}" in resolv
    # istio-init captured its DNS: the nat table sends port 53 to the agent.
    ns = NETWORK.netns(client["metadata"]["uid"])
    rules = subprocess.run(["ip", "netns", "exec", ns, "iptables-save", "-t", "nat"],
                           capture_output=True, text=True, timeout=30, check=True).stdout  # fmt: skip
    assert f"-d {NETWORK.gateway}/32 -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053" in rules


def test_service_entry_hosts_resolve_to_auto_allocated_addresses(cluster: Cluster) -> None:
    answers: dict[str, list[str]] = {}
    for host in (HOST, "one.example.test", "two.example.test"):
        answers[host] = poll(functools.partial(_resolved, cluster, host), f"{host} resolved", 60)
    print("resolved:", answers)
    addresses = [a for found in answers.values() for a in found]
    assert all(a.startswith("240.240.") for a in addresses)
    assert len(set(addresses)) == 3
    # A name the mesh does not know went on to the machine's resolver: NXDOMAIN comes back
    # (not SERVFAIL, nor a timeout: the chain agent -> node DNS -> host resolver answered).
    missing = app(cluster, "resolve", "not-registered.example.test")
    assert "Name or service not known" in missing.get("error", ""), missing


def _resolved(cluster: Cluster, host: str) -> list[str]:
    found: list[str] = app(cluster, "resolve", host).get("addresses") or []
    return found


def test_the_app_reaches_the_external_host_by_name(cluster: Cluster, external: str) -> None:
    def fetched() -> dict[str, Any]:
        answer = app(cluster, "get", f"http://{HOST}/")
        return answer if answer.get("status") == 200 else {}

    answer = poll(fetched, f"http://{HOST}/ through the sidecar", 60)
    body = json.loads(answer["body"])
    (client,) = cluster.ready("app=fortio")
    assert body["name"] == "external"
    assert body["host"] == HOST
    assert body["peer"] == client["status"]["podIP"]


def test_tcp_hosts_on_one_port_are_told_apart_by_their_addresses(
    cluster: Cluster, external: str
) -> None:
    def echoed(host: str) -> str | None:
        return app(cluster, "tcp", f"{host}:9000").get("reply")

    assert poll(lambda: echoed("one.example.test"), "one.example.test echoes", 60) == "one hello"
    assert poll(lambda: echoed("two.example.test"), "two.example.test echoes", 60) == "two hello"


def test_registry_only_still_refuses_an_unregistered_host(cluster: Cluster, external: str) -> None:
    manifest = cluster.mesh.topology.run_dir / "registry-only.yaml"
    manifest.write_text(REGISTRY_ONLY)
    unregistered = f"http://{EXTERNAL_IP}/"  # the same server, by an address nobody registered
    assert app(cluster, "get", unregistered).get("status") == 200  # ALLOW_ANY: passes through
    try:
        cluster.run("apply", "-f", str(manifest))
        poll(lambda: app(cluster, "get", unregistered).get("status") != 200,
             "REGISTRY_ONLY refusing the unregistered host", 60)  # fmt: skip
        refused = app(cluster, "get", unregistered)
        assert refused.get("status") in (404, 502) or "error" in refused, refused
        # The registered host, found by name, still goes through.
        assert app(cluster, "get", f"http://{HOST}/").get("status") == 200
    finally:
        cluster.run("delete", "-f", str(manifest), check=False)
