"""Istio's egress-gateway task on the local platform, with pods captured as Istio's are.

The kube platform with every pod in its own network namespace and istio-init's rules; Istio's
egress gateway (tools/local/egressgateway.yaml: istio-egressgateway, a router pod, not
captured) and fortio's pod as the app. The "external" host is an HTTP server outside the mesh,
in a namespace this test makes on the node's bridge, answering with the address that called
it. From the app (its user, no proxy variables), plain requests for `edition.external.test`
reach the server from the app's own pod; with the task's ServiceEntry, Gateway,
DestinationRule and VirtualService, every one reaches it from the egress gateway's pod only.
Names start with `cd<MESH_TEST_NET>-57-` (the server's `cd<MESH_TEST_NET>-x57`), pods are in
10.<100+MESH_TEST_NET>.57.0/24. Needs root, `ip`, iptables and setpriv.
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
SUBNET = loopback_subnet(57)
NETWORK = NodeNetwork(prefix=f"cd{NET}-57-", cidr=f"10.{100 + NET}.57.0/24")
FORTIO = ROOT / "samples/httpbin/sample-client/fortio-deploy.yaml"
EGRESS_GATEWAY = ROOT / "tools/local/egressgateway.yaml"
APP_USER = "1000"  # as the kubelet runs an image's USER 1000 (its group stays 0)
EXTERNAL_NS = f"cd{NET}-x57"
# The range's last address: the kubelet gives this module's few pods addresses from the first.
EXTERNAL_IP = str(NETWORK.network.broadcast_address - 1)
EXTERNAL_HOST = "edition.external.test"

pytestmark = NEEDS_NETNS

# Istio's task (edition.cnn.com there), with the server's address as the entry's endpoint:
# the pods' names are the kubelet's hosts files, which know Services only.
TASK = f"""\
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: edition}}
spec:
  hosts: [{EXTERNAL_HOST}]
  location: MESH_EXTERNAL
  resolution: STATIC
  ports: [{{number: 80, name: http-port, protocol: HTTP}}]
  endpoints: [{{address: {EXTERNAL_IP}}}]
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {{name: istio-egressgateway}}
spec:
  selector: {{istio: egressgateway}}
  servers: [{{port: {{number: 80, name: http, protocol: HTTP}}, hosts: [{EXTERNAL_HOST}]}}]
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: egressgateway-for-edition}}
spec:
  host: istio-egressgateway.istio-system.svc.cluster.local
  subsets: [{{name: edition}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: direct-edition-through-egress-gateway}}
spec:
  hosts: [{EXTERNAL_HOST}]
  gateways: [istio-egressgateway, mesh]
  http:
  - match: [{{gateways: [mesh], port: 80}}]
    route:
    - destination:
        host: istio-egressgateway.istio-system.svc.cluster.local
        subset: edition
        port: {{number: 80}}
      weight: 100
  - match: [{{gateways: [istio-egressgateway], port: 80}}]
    route:
    - destination: {{host: {EXTERNAL_HOST}, port: {{number: 80}}}}
      weight: 100
"""

_GET = """
import json, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers={"Host": sys.argv[2]})
try:
    with urllib.request.urlopen(request, timeout=10) as answer:
        print(json.dumps({"status": answer.status, "body": answer.read().decode()}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": error.read().decode(errors="replace")}))
except OSError as error:
    print(json.dumps({"error": str(error)}))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with reachable_run_dir(f"cd{NET}-egress-mesh") as run_dir:
        mesh = MeshUnderTest(
            run_dir,
            SUBNET,
            platform="kube",
            bookinfo=False,
            **captured_pods(NETWORK),
        )
        with mesh:
            cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
            try:
                cluster.run("label", "namespace", "default", "istio-injection=enabled")
                cluster.run("apply", "-f", str(EGRESS_GATEWAY), "-f", str(FORTIO))
                poll(functools.partial(cluster.ready, "app=fortio"), "fortio ready", POD_START)
                poll(lambda: _gateway_pods(cluster), "the egress gateway running", POD_START)
                yield cluster
            finally:
                for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                    print(f"--- {log.parent.parent.name}/{log.name} ---")
                    print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")
        assert netnssandbox.namespaces(NETWORK) == []


def _gateway_pods(cluster: Cluster) -> list[dict[str, Any]]:
    found = json.loads(
        cluster.run("get", "pods", "-n", "istio-system", "-l", "istio=egressgateway", "-o", "json")
    )["items"]
    return [p for p in found if (p.get("status") or {}).get("phase") == "Running"]


@pytest.fixture(scope="module")
def external(cluster: Cluster) -> Iterator[str]:
    """The host outside the mesh: no sidecar, in a namespace of its own on the bridge."""
    with external_http_server(
        namespace=EXTERNAL_NS,
        link=f"cd{NET}-x57h",
        network=NETWORK,
        ip=EXTERNAL_IP,
        port=80,
        label="edition",
        log=cluster.mesh.topology.log_dir / "external.log",
    ) as url:
        yield url


def peers(cluster: Cluster, url: str, count: int = 5) -> set[str]:
    """Who the external host saw calling, for `count` plain requests from fortio's app (its
    user, nothing in its environment), or what went wrong."""
    (client,) = cluster.ready("app=fortio")
    ns = NETWORK.netns(client["metadata"]["uid"])
    seen = set()
    for _ in range(count):
        command = ["ip", "netns", "exec", ns, "env", "-i", "setpriv", f"--reuid={APP_USER}",
                   "--clear-groups", "--", sys.executable, "-c", _GET, url, EXTERNAL_HOST]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        ok = answer.get("status") == 200
        seen.add(json.loads(answer["body"])["peer"] if ok else json.dumps(answer)[:200])
    return seen


def test_egress_leaves_only_through_the_egress_gateway(cluster: Cluster, external: str):
    (client,) = cluster.ready("app=fortio")
    app_ip = client["status"]["podIP"]
    (gateway,) = _gateway_pods(cluster)
    gateway_ip = gateway["status"]["podIP"]
    # Unregistered (ALLOW_ANY): the app's connection passes through to the host itself.
    assert peers(cluster, external) == {app_ip}
    manifest = cluster.mesh.topology.run_dir / "egress-gateway-task.yaml"
    manifest.write_text(TASK)
    try:
        cluster.run("apply", "-f", str(manifest))
        poll(lambda: peers(cluster, external) == {gateway_ip}, "requests via the gateway", 60)
        # Every request leaves the mesh from the gateway's pod, none from the app's.
        seen = peers(cluster, external, 20)
        print(f"app {app_ip}, egress gateway {gateway_ip}: 20 requests seen from {seen}")
        assert seen == {gateway_ip}
    finally:
        cluster.run("delete", "-f", str(manifest), check=False)
    poll(lambda: peers(cluster, external) == {app_ip}, "the task's rules gone: direct again", 60)
