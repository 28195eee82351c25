"""The local platform as a Kubernetes cluster: Istio's bookinfo.yaml applied with kubectl.

One mesh for the module, started without Bookinfo, as a fresh cluster with Istio installed.
The test does what Istio's getting-started guide has a user do: label the namespace for
injection, `kubectl apply -f samples/bookinfo/platform/kube/bookinfo.yaml` and the gateway,
then open the page. Then what a cluster's users do to it: `kubectl get pods`, scale
reviews-v3 to 0 and back (its red stars go and come back, seen in real requests through the
gateway), delete a pod (its Deployment replaces it, the page keeps working), `kubectl logs`.
Everything runs as real processes: the store, Pilot (Kubernetes registry), the local kubelet
and controllers, each pod's app, pilot-agent and Envoy.
"""

from __future__ import annotations

import functools
import json
import pathlib
import urllib.request
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2
from envoy.service.discovery.v3 import discovery_pb2
from envoy.service.secret.v3 import sds_pb2_grpc

from pilot.configstore.testing import Kubectl
from pkg.testing.wait import poll
from security.nodeagent.certificate import certificate_uris
from security.nodeagent.resources import SECRET_TYPE
from security.nodeagent.testing import node, secrets_of
from tests.e2e.meshtest import MeshUnderTest, Page, loopback_subnet
from tools.local.topology import NODE_AGENT_STATUS_PORT, ROOT

SUBNET = loopback_subnet(133)
BOOKINFO = ROOT / "samples/bookinfo/platform/kube/bookinfo.yaml"
GATEWAY = ROOT / "samples/bookinfo/networking/bookinfo-gateway.yaml"
# A pod starts real processes (app, pilot-agent, Envoy): allow a loaded CI machine its time.
POD_START = 90.0
DEPLOYMENTS = (
    "details-v1",
    "productpage-v1",
    "ratings-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
)


class Cluster:
    def __init__(self, mesh: MeshUnderTest, home: pathlib.Path) -> None:
        self.mesh = mesh
        self.kubectl = Kubectl(
            mesh.topology.config_store_url, home, kubeconfig=mesh.topology.kubeconfig
        )

    def run(self, *args: str, check: bool = True) -> str:
        return self.kubectl.run(*args, check=check).stdout

    def pods(self, selector: str = "") -> list[dict[str, Any]]:
        args = ("get", "pods", "-o", "json", *(("-l", selector) if selector else ()))
        return json.loads(self.run(*args))["items"]

    def ready(self, selector: str) -> list[dict[str, Any]]:
        """The selected pods that run and are ready, not being deleted."""
        return [
            pod
            for pod in self.pods(selector)
            if not pod["metadata"].get("deletionTimestamp")
            and pod.get("status", {}).get("phase") == "Running"
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in pod["status"].get("conditions") or []
            )
        ]

    def pages(self, count: int) -> list[Page]:
        pages = [self.mesh.page() for _ in range(count)]
        assert all(p.status == 200 for p in pages), [p.status for p in pages]
        return pages


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    run_dir = tmp_path_factory.mktemp("kube-mesh")
    with MeshUnderTest(run_dir, SUBNET, platform="kube", bookinfo=False) as mesh:
        cluster = Cluster(mesh, tmp_path_factory.mktemp("kubectl"))
        try:
            yield cluster
        finally:
            # What the kubelet and the pods said, for a failure's report.
            for log in sorted((run_dir / "pods").glob("*/logs/*.log")):
                if log.parent.parent.name.startswith("default_"):
                    print(f"--- {log.parent.parent.name}/{log.name} ---")
                    print(*log.read_text(errors="replace").splitlines()[-15:], sep="\n")


@pytest.fixture(scope="module")
def bookinfo(cluster: Cluster) -> str:
    """Istio's guide: label the namespace, apply bookinfo.yaml and the gateway."""
    cluster.run("label", "namespace", "default", "istio-injection=enabled")
    applied = cluster.run("apply", "-f", str(BOOKINFO)) + cluster.run("apply", "-f", str(GATEWAY))
    for deployment in DEPLOYMENTS:
        selector = "app={},version={}".format(*deployment.rsplit("-", 1))
        poll(functools.partial(cluster.ready, selector), f"{deployment} ready", POD_START)
    poll(lambda: cluster.mesh.page().status == 200, "the page through the gateway", POD_START)
    return applied


def test_kubectl_apply_of_istios_bookinfo_gives_a_working_page(cluster: Cluster, bookinfo: str):
    assert "deployment.apps/reviews-v3 created" in bookinfo
    assert "gateway.networking.istio.io/bookinfo-gateway created" in bookinfo
    table = [line.split() for line in cluster.run("get", "pods").splitlines()]
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert sorted(row[0].rsplit("-", 2)[0] for row in table[1:]) == sorted(DEPLOYMENTS)
    assert {(row[1], row[2]) for row in table[1:]} == {("2/2", "Running")}  # app + istio-proxy
    # Each pod has its own address from the node's range, and a sidecar as injection adds it.
    pods = cluster.pods()
    addresses = {pod["status"]["podIP"] for pod in pods}
    assert len(addresses) == len(DEPLOYMENTS)
    assert all(address.startswith(f"{SUBNET}.") for address in addresses)
    assert all([c["name"] for c in pod["spec"]["containers"]][-1] == "istio-proxy" for pod in pods)
    # The endpoints controller's slices name the ready pods.
    slices = json.loads(
        cluster.run(
            "get", "endpointslices", "-l", "kubernetes.io/service-name=reviews", "-o", "json"
        )
    )["items"]
    targets = {e["targetRef"]["name"] for s in slices for e in s["endpoints"]}
    assert targets == {p["metadata"]["name"] for p in cluster.pods("app=reviews")}
    # Every version answers, each with its own stars: Pilot found them all through Kubernetes.
    versions = {page.reviews_version for page in cluster.pages(30)}
    assert versions == {"v1", "v2", "v3"}
    assert all("William Shakespeare" in p.body for p in cluster.pages(3))


def test_scale_reviews_v3_to_zero_and_back(cluster: Cluster, bookinfo: str):
    scaled = cluster.run("scale", "deployment", "reviews-v3", "--replicas=0")
    assert scaled.strip() == "deployment.apps/reviews-v3 scaled"
    poll(lambda: not cluster.pods("app=reviews,version=v3"), "reviews-v3's pod gone", POD_START)
    # Once Pilot pushed the endpoints without it, no page shows red stars.
    poll(
        lambda: all(p.reviews_version != "v3" for p in cluster.pages(10)), "no red stars", POD_START
    )
    versions = [page.reviews_version for page in cluster.pages(30)]
    assert "v3" not in versions
    assert set(versions) == {"v1", "v2"}
    ready = cluster.run("get", "deployment", "reviews-v3", "-o", "jsonpath={.status.replicas}")
    assert ready in ("", "0")

    cluster.run("scale", "deployment", "reviews-v3", "--replicas=1")
    poll(lambda: cluster.ready("app=reviews,version=v3"), "a new reviews-v3 pod ready", POD_START)
    poll(
        lambda: any(p.reviews_version == "v3" for p in cluster.pages(10)),
        "red stars again",
        POD_START,
    )
    assert {page.reviews_version for page in cluster.pages(30)} == {"v1", "v2", "v3"}


def test_a_deleted_pod_is_replaced_and_the_page_keeps_working(cluster: Cluster, bookinfo: str):
    (before,) = cluster.ready("app=ratings")
    old = before["metadata"]["name"]
    deleted = cluster.run("delete", "pod", old)
    assert deleted.strip() == f'pod "{old}" deleted'

    def replaced() -> list[dict[str, Any]]:
        return [p for p in cluster.ready("app=ratings") if p["metadata"]["name"] != old]

    (after,) = poll(replaced, "a new ratings pod ready", POD_START)
    # Made by its Deployment from the same template (no ReplicaSet objects on this platform).
    (owner,) = after["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["controller"]) == ("Deployment", "ratings-v1", True)
    assert after["metadata"]["name"].rsplit("-", 1)[0] == old.rsplit("-", 1)[0]
    assert old not in {p["metadata"]["name"] for p in cluster.pods("app=ratings")}

    # The new pod's endpoint replaces the old one: stars show again on the pages that have them.
    def stars() -> bool:
        pages = cluster.pages(10)
        return all("Ratings service is currently unavailable" not in p.body for p in pages)

    poll(stars, "ratings served by the new pod", POD_START)
    pages = cluster.pages(30)
    assert {p.reviews_version for p in pages} == {"v1", "v2", "v3"}
    assert all("Ratings service is currently unavailable" not in p.body for p in pages)


def test_kubectl_logs(cluster: Cluster, bookinfo: str):
    cluster.pages(2)
    (pod,) = cluster.ready("app=productpage")
    name = pod["metadata"]["name"]
    # The default container is the app's (the annotation injection writes).
    app = cluster.run("logs", name)
    assert "GET /productpage" in app
    assert cluster.run("logs", name, "-c", "productpage") == app
    proxy = cluster.run("logs", name, "-c", "istio-proxy")
    assert proxy.strip()
    assert proxy != app
    tail = cluster.run("logs", "deployment/productpage-v1", "--tail=1")
    assert len(tail.splitlines()) == 1
    missing = cluster.kubectl.run("logs", name, "-c", "nothing", check=False)
    assert missing.returncode != 0
    assert "nothing" in missing.stderr


def test_each_pod_is_served_only_its_own_identity(cluster: Cluster, bookinfo: str):
    """The kubelet gave each pod its own SDS socket: on reviews' socket a client gets
    reviews' certificate, and is refused productpage's or istiod's, whatever its node says."""
    topology = cluster.mesh.topology
    url = f"http://{topology.control_address}:{NODE_AGENT_STATUS_PORT}/debug/workloads"
    with urllib.request.urlopen(url, timeout=10) as response:
        served = json.load(response)["served"]
    reviews = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    sockets = [w["socket"] for w in served if w["identity"] == reviews]
    assert len(sockets) == 3  # reviews v1, v2 and v3: one socket each
    assert all(s.startswith(str(topology.sds_sockets)) for s in sockets)

    def fetch(socket: str, namespace: str, account: str) -> secret_pb2.Secret:
        request = discovery_pb2.DiscoveryRequest(type_url=SECRET_TYPE, resource_names=["default"])
        request.node.CopyFrom(node(namespace, account, node_id="e2e-client"))
        with grpc.insecure_channel(f"unix:{socket}") as channel:
            stub = sds_pb2_grpc.SecretDiscoveryServiceStub(channel)
            return secrets_of(stub.FetchSecrets(request, timeout=20))["default"]

    chain = fetch(sockets[0], "default", "bookinfo-reviews").tls_certificate.certificate_chain
    assert certificate_uris(chain.inline_bytes) == (reviews,)
    for namespace, account in (("default", "bookinfo-productpage"), ("istio-system", "istiod")):
        with pytest.raises(grpc.RpcError) as refused:
            fetch(sockets[0], namespace, account)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert f"which serves only {reviews}" in refused.value.details()
