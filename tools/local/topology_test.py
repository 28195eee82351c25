"""What each platform of the local mesh runs and applies (no process is started)."""

from __future__ import annotations

import pathlib

import pytest

from tools.local.kubeplatform import INJECTION_NAMESPACE
from tools.local.topology import ROOT, Topology

KUBE_BOOKINFO = ROOT / "samples/bookinfo/platform/kube/bookinfo.yaml"


def names(topology: Topology) -> list[str]:
    return [spec.name for spec in topology.processes()]


def test_kube_runs_istios_bookinfo_through_the_kubelet(tmp_path: pathlib.Path):
    kube = Topology(run_dir=tmp_path, platform="kube")
    assert KUBE_BOOKINFO in kube.bookinfo_config
    assert {"kube-controllers", "kubelet"} <= set(names(kube))
    assert not any(name.startswith("reviews") for name in names(kube))  # the kubelet's pods
    pilot = next(s for s in kube.processes() if s.name == "pilot-discovery")
    assert "Kubernetes,ServiceEntry" in pilot.argv
    assert str(kube.kubeconfig) in pilot.argv


def test_local_runs_the_launchers_pods_with_serviceentries(tmp_path: pathlib.Path):
    local = Topology(run_dir=tmp_path, platform="local")
    assert KUBE_BOOKINFO not in local.bookinfo_config
    assert INJECTION_NAMESPACE in local.bookinfo_config  # its pods have sidecars too
    assert "kubelet" not in names(local)
    assert {"reviews-v3", "reviews-v3-proxy"} <= set(names(local))


def test_without_bookinfo_the_platform_alone(tmp_path: pathlib.Path):
    bare = Topology(run_dir=tmp_path, platform="kube", bookinfo=False)
    assert bare.bookinfo_config == ()
    gateway = next(s for s in bare.processes() if s.name == "istio-ingressgateway")
    # No Gateway gives it a listener yet: started and live is all it can be.
    assert gateway.ready_url.endswith("/healthz/live")
    with_bookinfo = Topology(run_dir=tmp_path, platform="kube")
    gateway = next(s for s in with_bookinfo.processes() if s.name == "istio-ingressgateway")
    assert gateway.ready_url.endswith("/healthz/ready")


def test_kube_has_no_other_registry(tmp_path: pathlib.Path):
    with pytest.raises(ValueError, match="registry is Kubernetes"):
        Topology(run_dir=tmp_path, platform="kube", registry="Consul", registry_url="http://x")


def test_every_sidecar_and_the_gateway_get_their_own_sds_socket(tmp_path: pathlib.Path):
    local = Topology(run_dir=tmp_path, platform="local")
    agents = [s for s in local.processes() if s.argv[2] == "proxy.agent.main"]
    sockets = [s.argv[s.argv.index("--sds-socket") + 1] for s in agents]
    assert len(agents) == len(local.pods) + 1
    assert len(set(sockets)) == len(sockets)  # no two workloads share a socket
    gateway = next(s for s in agents if s.name == "istio-ingressgateway")
    assert gateway.argv[gateway.argv.index("--sds-socket") + 1] == str(
        local.sds_socket("istio-system", "istio-ingressgateway")
    )
    agent = next(s for s in local.processes() if s.name == "node-agent")
    assert "--sds-socket" not in agent.argv  # no shared socket to claim identities on
    assert agent.argv[agent.argv.index("--workloads-dir") + 1] == str(local.workload_credentials)
    kubelet = next(
        s for s in Topology(run_dir=tmp_path, platform="kube").processes() if s.name == "kubelet"
    )
    assert kubelet.argv[kubelet.argv.index("--workloads-dir") + 1] == str(
        local.workload_credentials
    )


def test_pods_in_namespaces_put_the_control_plane_on_the_bridge(tmp_path: pathlib.Path):
    netns = Topology(
        run_dir=tmp_path, platform="kube", pod_network="netns", control_address="10.244.0.1"
    )
    kubelet = next(s for s in netns.processes() if s.name == "kubelet")
    argv = list(kubelet.argv)
    assert argv[argv.index("--runtime") + 1] == "netns"
    assert argv[argv.index("--pod-ips") + 1] == "10.244.0.2-10.244.0.254"
    assert argv[argv.index("--pod-cidr") + 1] == "10.244.0.0/24"
    assert argv[argv.index("--netns-prefix") + 1] == "mesh-"
    assert netns.interception_mode == "NONE"
    pilot = next(s for s in netns.processes() if s.name == "pilot-discovery")
    assert "10.244.0.1:15012" in pilot.argv
    loopback = Topology(run_dir=tmp_path, platform="kube")
    kubelet = next(s for s in loopback.processes() if s.name == "kubelet")
    assert kubelet.argv[kubelet.argv.index("--runtime") + 1] == "process"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"platform": "local", "pod_network": "netns"}, "kube platform's kubelet"),
        ({"platform": "kube", "pod_network": "netns"}, "listens on the bridge's address"),
        ({"platform": "kube", "interception": True}, "interception needs pods in network"),
        ({"platform": "kube", "pod_network": "veth"}, "pod_network must be one of"),
    ],
)
def test_a_pod_network_that_cannot_work_is_refused(tmp_path, options, message):
    with pytest.raises(ValueError, match=message):
        Topology(run_dir=tmp_path, **options)
