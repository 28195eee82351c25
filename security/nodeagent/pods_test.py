"""The node's pods, each on its own socket: the node agent reads them through the official
client from the embedded config store, acting as the Kubernetes API server (real lists, real
watch streams, a real 410 once its history has moved on), and serves each injected pod over
real SDS with the identity of its service account."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import pathlib
import shutil
import signal
import stat
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from kubernetes.aio import client

from pilot.configstore.server import ConfigStoreServer, Options
from pilot.registry.kube.testing import CuttableProxy
from security.nodeagent.agent import NodeAgent
from security.nodeagent.certificate import certificate_uris
from security.nodeagent.fakeca import TEST_TOKEN, FakeCa, FakeCaServer
from security.nodeagent.kubepods import NodePods
from security.nodeagent.options import NodeAgentOptions
from security.nodeagent.pods import binding_for, pod_source, proxy_owner
from security.nodeagent.resources import SECRET_TYPE
from security.nodeagent.testing import eventually, node, run_async, running, sds_driver, secrets_of
from security.nodeagent.workloads import WorkloadEntryError

NODE = "node-a"
REVIEWS = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
UID = "0b5e2c1e-4c1f-4f59-9d1e-0123456789ab"


def pod_body(
    name: str,
    *,
    node_name: str = NODE,
    account: str = "",
    injected: bool = True,
    native: bool = False,
) -> dict[str, Any]:
    """A pod as the scheduler leaves it: bound to a node, with the injected istio-proxy (as
    a container, or as a native sidecar among the init containers)."""
    proxy = {"name": "istio-proxy", "image": "example/proxyv2:1"}
    spec: dict[str, Any] = {
        "nodeName": node_name,
        "containers": [{"name": "app", "image": "example/app:1"}],
    }
    if injected and native:
        spec["initContainers"] = [{**proxy, "restartPolicy": "Always"}]
    elif injected:
        spec["containers"].append(proxy)
    if account:
        spec["serviceAccountName"] = account
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def model(body: dict[str, Any], namespace: str = "default", uid: str = UID) -> Any:
    """The body as the official client hands a listed pod over (a V1Pod)."""
    answer = {**body, "metadata": {**body["metadata"], "namespace": namespace, "uid": uid}}
    return client.ApiClient().deserialize(json.dumps(answer), "V1Pod", "application/json")


def test_the_socket_is_made_for_the_user_istio_proxy_runs_as() -> None:
    body = pod_body("reviews-v1")
    assert proxy_owner(model(body)) is None  # neither names one: the agent's own
    body["spec"]["securityContext"] = {"runAsUser": 1000, "runAsGroup": 3000}
    assert proxy_owner(model(body)) == (1000, 3000)
    proxy = body["spec"]["containers"][1]
    proxy["securityContext"] = {"runAsUser": 1337}  # the container's over the pod's
    assert proxy_owner(model(body)) == (1337, 3000)
    proxy["securityContext"] = {"runAsUser": 1337, "runAsGroup": 1337}  # injection's
    binding = binding_for(
        model(body), node=NODE, sockets_dir=pathlib.Path("/s"), trust_domain="cluster.local"
    )
    assert binding is not None
    assert binding.owner == (1337, 1337)


# Which pods get a binding: pure, on the client's models.


def test_an_injected_pod_of_this_node_is_bound_to_its_service_account() -> None:
    sockets = pathlib.Path("/var/run/sds/pods")
    for native in (False, True):
        pod = model(pod_body("reviews-v1", account="bookinfo-reviews", native=native))
        binding = binding_for(pod, node=NODE, sockets_dir=sockets, trust_domain="cluster.local")
        assert binding is not None
        assert binding.identity.spiffe_id == REVIEWS
        assert binding.socket == sockets / UID / "sds.sock"
        assert (binding.source, binding.workload) == (pod_source(UID), "default/reviews-v1")
    # No serviceAccountName: Kubernetes' default account.
    plain = binding_for(
        model(pod_body("p")), node=NODE, sockets_dir=sockets, trust_domain="cluster.local"
    )
    assert plain is not None
    assert plain.identity.spiffe_id == "spiffe://cluster.local/ns/default/sa/default"


def test_pods_of_other_nodes_uninjected_or_finished_get_nothing() -> None:
    sockets = pathlib.Path("/var/run/sds/pods")
    finished = model(pod_body("job"))
    finished.status = client.V1PodStatus(phase="Succeeded")
    for pod in (
        model(pod_body("elsewhere", node_name="node-b")),
        model(pod_body("plain", injected=False)),
        finished,
    ):
        assert binding_for(pod, node=NODE, sockets_dir=sockets, trust_domain="td") is None


def test_a_pod_naming_a_reserved_identity_or_a_strange_uid_is_refused() -> None:
    sockets = pathlib.Path("/var/run/sds/pods")
    istiod = model(pod_body("istiod-x", account="istiod"), namespace="istio-system")
    reserved = frozenset({"spiffe://cluster.local/ns/istio-system/sa/istiod"})
    with pytest.raises(WorkloadEntryError, match="reserved"):
        binding_for(
            istiod, node=NODE, sockets_dir=sockets, trust_domain="cluster.local", reserved=reserved
        )
    with pytest.raises(WorkloadEntryError, match="not a Kubernetes uid"):
        binding_for(
            model(pod_body("p"), uid="../../etc"),
            node=NODE,
            sockets_dir=sockets,
            trust_domain="cluster.local",
        )
    with pytest.raises(WorkloadEntryError, match="longer than a Unix socket path"):
        binding_for(
            model(pod_body("p")),
            node=NODE,
            sockets_dir=pathlib.Path("/" + "d" * 80),
            trust_domain="cluster.local",
        )


# The agent against the config store.


@pytest.fixture
def workdir() -> Iterator[pathlib.Path]:
    # Short: a Unix socket path must fit in 107 bytes, and a pod's has a 36-byte uid in it.
    directory = pathlib.Path(tempfile.mkdtemp(prefix="np-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def api_client(url: str) -> client.ApiClient:
    return client.ApiClient(client.Configuration(host=url))


@contextlib.asynccontextmanager
async def cluster(workdir: pathlib.Path, history: int = 10_000) -> AsyncIterator[Any]:
    """The config store as the API server, the fake CA, and a writer (the official client)."""
    store = ConfigStoreServer(options=Options(port=0, db=workdir / "db", history=history))
    await store.start()
    ca = FakeCaServer(FakeCa())
    await ca.start()
    writer = api_client(store.url)
    try:
        yield store, ca, client.CoreV1Api(writer)
    finally:
        await writer.close()
        await ca.stop()
        await store.stop()


def agent_options(ca: FakeCaServer, workdir: pathlib.Path) -> NodeAgentOptions:
    root, token = workdir / "root-cert.pem", workdir / "token"
    root.write_bytes(ca.tls_root_pem)
    token.write_text(TEST_TOKEN)
    return NodeAgentOptions(
        ca_address=ca.address,
        ca_root=root,
        token_file=token,
        run_dir=workdir / "run",
        status_address="127.0.0.1:0",
        ttl=3600,
        node_name=NODE,
        pod_sockets_dir=workdir / "pods",
    )


@contextlib.asynccontextmanager
async def running_agent(
    options: NodeAgentOptions, api_url: str, watch_seconds: int = 300
) -> AsyncIterator[NodeAgent]:
    pods = NodePods(api_client(api_url), NODE, watch_seconds=watch_seconds)
    agent = NodeAgent(options=options, pod_client=pods)
    assert agent.pods is not None
    # Fast retries: the tests wait for reconnects.
    agent.pods.options = dataclasses.replace(agent.pods.options, backoff_min=0.05, backoff_max=0.2)
    async with running(agent):
        await eventually(agent.pods.has_synced, what="the node's pods listed")
        yield agent


def socket_of(uid: str, options: NodeAgentOptions) -> pathlib.Path:
    assert options.pod_sockets_dir is not None
    return options.pod_sockets_dir / uid / "sds.sock"


async def identity_served(socket: pathlib.Path, namespace: str, account: str) -> str:
    async with sds_driver(socket, node(namespace, account)) as envoy:
        await envoy.request(SECRET_TYPE, ["default"])
        secret = secrets_of(await envoy.expect_response())["default"]
        [uri] = certificate_uris(secret.tls_certificate.certificate_chain.inline_bytes)
        return uri


@run_async(timeout=90)
async def test_each_injected_pod_of_the_node_gets_its_own_socket_and_identity(
    workdir: pathlib.Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="security.nodeagent")
    async with cluster(workdir) as (store, ca, core):
        await core.create_namespace({"metadata": {"name": "istio-system"}})
        # Before the agent starts: found by its list.
        reviews = await core.create_namespaced_pod(
            "default", pod_body("reviews-v1", account="bookinfo-reviews")
        )
        options = agent_options(ca, workdir)
        async with running_agent(options, store.url) as agent:
            watcher = agent.pods
            assert watcher is not None
            reviews_socket = socket_of(reviews.metadata.uid, options)
            await eventually(reviews_socket.exists, what="reviews' socket")
            assert stat.S_IMODE(reviews_socket.parent.stat().st_mode) == 0o700
            assert stat.S_IMODE(reviews_socket.stat().st_mode) == 0o600
            assert await identity_served(reviews_socket, "default", "bookinfo-reviews") == REVIEWS

            # After: found by its watch; a native sidecar counts as injected.
            ratings = await core.create_namespaced_pod(
                "default", pod_body("ratings-v1", account="bookinfo-ratings", native=True)
            )
            ratings_socket = socket_of(ratings.metadata.uid, options)
            await eventually(ratings_socket.exists, what="ratings' socket")
            ratings_identity = "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"
            assert (
                await identity_served(ratings_socket, "default", "bookinfo-ratings")
                == ratings_identity
            )

            # Another node's pod, an uninjected pod, istiod's identity: no socket.
            elsewhere = await core.create_namespaced_pod(
                "default", pod_body("details-v1", node_name="node-b")
            )
            plain = await core.create_namespaced_pod("default", pod_body("plain", injected=False))
            istiod = await core.create_namespaced_pod(
                "istio-system", pod_body("istiod-x", account="istiod")
            )
            await eventually(
                lambda: istiod.metadata.uid in watcher.errors, what="istiod's pod refused"
            )
            assert "reserved" in watcher.errors[istiod.metadata.uid]
            for other in (elsewhere, plain, istiod):
                assert not socket_of(other.metadata.uid, options).parent.exists()
            assert sorted(b.workload for b in agent.sockets.served()) == [
                "default/ratings-v1",
                "default/reviews-v1",
            ]
            status = agent.workloads_status()["pods"]
            assert isinstance(status, dict)
            assert status["node"] == NODE

            # A process on reviews' socket claiming ratings' identity: refused, and logged.
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await identity_served(reviews_socket, "default", "bookinfo-ratings")
            assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
            assert any(
                f"asked for {ratings_identity} on unix:{reviews_socket}" in r.getMessage()
                for r in caplog.records
            )

            # A finished pod loses its socket and its directory; so does a deleted one.
            finished = ratings.status or client.V1PodStatus()
            finished.phase = "Succeeded"
            ratings.status = finished
            await core.replace_namespaced_pod_status("ratings-v1", "default", ratings)
            await eventually(
                lambda: not ratings_socket.parent.exists(), what="the finished pod's socket gone"
            )
            # A deleted pod is terminating first (its Envoy drains, still with its
            # certificate); it is gone when the kubelet removes it (grace 0, as here).
            await core.delete_namespaced_pod("reviews-v1", "default", grace_period_seconds=0)
            await eventually(
                lambda: not reviews_socket.parent.exists(), what="the deleted pod's socket gone"
            )
            assert agent.sockets.served() == []
            # Only the two rightful identities were ever signed.
            assert ca.ca.calls == 2


@run_async(timeout=90)
async def test_a_watch_back_after_history_moved_on_lists_again(workdir: pathlib.Path) -> None:
    # A store that keeps little history: what happened while the agent was cut off is beyond
    # it, so its watch gets 410 Gone and it must list again to see that the pod went.
    async with cluster(workdir, history=5) as (store, ca, core):
        reviews = await core.create_namespaced_pod(
            "default", pod_body("reviews-v1", account="bookinfo-reviews")
        )
        host, port = store.url.removeprefix("http://").rsplit(":", 1)
        options = agent_options(ca, workdir)
        async with (
            CuttableProxy(host, int(port)) as network,
            running_agent(options, network.url, watch_seconds=1) as agent,
        ):
            watcher = agent.pods
            assert watcher is not None
            reviews_socket = socket_of(reviews.metadata.uid, options)
            await eventually(reviews_socket.exists, what="reviews' socket")
            network.cut()
            await eventually(lambda: bool(watcher.last_error), what="the agent cut off")
            await core.delete_namespaced_pod("reviews-v1", "default", grace_period_seconds=0)
            ratings = await core.create_namespaced_pod(
                "default", pod_body("ratings-v1", account="bookinfo-ratings")
            )
            for index in range(10):  # more writes than the store remembers
                await core.create_namespaced_pod(
                    "default", pod_body(f"filler-{index}", node_name="node-b")
                )
            assert reviews_socket.exists()  # the last view, kept while cut off
            network.restore()
            ratings_socket = socket_of(ratings.metadata.uid, options)
            await eventually(ratings_socket.exists, timeout=20, what="ratings served")
            await eventually(lambda: not reviews_socket.parent.exists(), what="reviews gone")
            assert watcher.relists >= 1
            assert await identity_served(ratings_socket, "default", "bookinfo-ratings") == (
                "spiffe://cluster.local/ns/default/sa/bookinfo-ratings"
            )


@run_async(timeout=60)
async def test_the_folder_entries_still_work_beside_the_pods(workdir: pathlib.Path) -> None:
    from security.nodeagent.testing import write_workload

    async with cluster(workdir) as (store, ca, core):
        options = agent_options(ca, workdir)
        entry_socket = workdir / "sds" / "gateway" / "sds.sock"
        gateway = "spiffe://cluster.local/ns/istio-system/sa/ingressgateway"
        write_workload(options.workloads_path, "gateway", gateway, entry_socket)
        pod = await core.create_namespaced_pod(
            "default", pod_body("reviews-v1", account="bookinfo-reviews")
        )
        async with running_agent(options, store.url) as agent:
            pod_socket = socket_of(pod.metadata.uid, options)
            await eventually(pod_socket.exists, what="the pod's socket")
            assert await identity_served(entry_socket, "istio-system", "ingressgateway") == gateway
            assert await identity_served(pod_socket, "default", "bookinfo-reviews") == REVIEWS
            assert len(agent.sockets.served()) == 2


@run_async(timeout=30)
async def test_directories_of_pods_gone_while_the_agent_was_down_are_removed(
    workdir: pathlib.Path,
) -> None:
    import socket as sockets

    async with cluster(workdir) as (store, ca, _):
        options = agent_options(ca, workdir)
        assert options.pod_sockets_dir is not None
        stale = options.pod_sockets_dir / UID
        stale.mkdir(parents=True)
        leftover = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
        leftover.bind(str(stale / "sds.sock"))
        leftover.close()
        other = options.pod_sockets_dir / "not-a-pod"
        other.mkdir()
        async with running_agent(options, store.url):
            assert not stale.exists()
            assert other.exists()  # only what looks like a pod's is the agent's to remove


@run_async(timeout=90)
async def test_the_cli_reads_its_nodes_pods_with_a_kubeconfig(workdir: pathlib.Path) -> None:
    # The real entry point, as the DaemonSet runs it: --node-name, --pod-sockets-dir and a
    # kubeconfig (write_kubeconfig's, the one the local platform gives kubectl).
    from pkg.kube.kubeconfig import write_kubeconfig
    from pkg.testing import programs

    async with cluster(workdir) as (store, ca, core):
        options = agent_options(ca, workdir)
        kubeconfig = write_kubeconfig(workdir / "kubeconfig", store.url)
        pod = await core.create_namespaced_pod(
            "default", pod_body("reviews-v1", account="bookinfo-reviews")
        )
        log_path = workdir / "agent.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(  # noqa: ASYNC220  a fork before the loop has other work
                programs.command(
                    "security.nodeagent.main",
                    f"--ca-address={ca.address}",
                    f"--ca-root={options.ca_root}",
                    f"--token-file={options.token_file}",
                    f"--run-dir={workdir / 'run'}",
                    "--status-address=127.0.0.1:0",
                    f"--node-name={NODE}",
                    f"--pod-sockets-dir={options.pod_sockets_dir}",
                    f"--kubeconfig={kubeconfig}",
                ),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=programs.environ(PYTHONUNBUFFERED="1"),
            )
        try:
            socket = socket_of(pod.metadata.uid, options)
            await eventually(
                lambda: socket.exists() or process.poll() is not None,
                timeout=30,
                what="the pod's socket",
            )
            assert process.poll() is None, log_path.read_text()
            assert await identity_served(socket, "default", "bookinfo-reviews") == REVIEWS
            process.send_signal(signal.SIGTERM)
            await eventually(lambda: process.poll() is not None, timeout=15, what="agent exit")
            assert process.returncode == 0, log_path.read_text()
            assert not socket.exists()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)


@run_async(timeout=60)
async def test_a_socket_that_could_not_be_made_is_tried_again_when_the_pod_changes(
    workdir: pathlib.Path,
) -> None:
    async with cluster(workdir) as (store, ca, core):
        options = agent_options(ca, workdir)
        pod = await core.create_namespaced_pod(
            "default", pod_body("reviews-v1", account="bookinfo-reviews")
        )
        socket = socket_of(pod.metadata.uid, options)
        # Something else holds the socket's path (not a socket): logged, not served.
        socket.parent.mkdir(parents=True)
        socket.write_text("in the way")
        async with running_agent(options, store.url) as agent:
            assert agent.pods is not None
            assert [b.workload for b in agent.pods.bindings.values()] == ["default/reviews-v1"]
            assert agent.sockets.served() == []
            socket.unlink()
            patch = {"metadata": {"labels": {"version": "v1"}}}
            await core.patch_namespaced_pod("reviews-v1", "default", patch)
            await eventually(socket.exists, what="the socket, made at the pod's next change")
            assert await identity_served(socket, "default", "bookinfo-reviews") == REVIEWS
