"""`make bookinfo`'s choice of pod network: namespaces and Istio's capture where the machine
allows them, else loopback addresses, said in one line; what cannot work is refused."""

from __future__ import annotations

import pathlib
import shutil
import tempfile

import pytest

from tools.local.main import PodNetworkChoice, choose_pod_network, sidecar_reach_problem
from tools.local.topology import Topology

NOT_ROOT = "not root (network namespaces and iptables need NET_ADMIN)"


def choose(wanted: str = "auto", **options: object) -> PodNetworkChoice:
    settings: dict[str, object] = {
        "platform": "kube",
        "control_address": None,
        "pod_cidr": "10.244.0.0/24",
        "interception": "auto",
        "unavailable": "",
    }
    settings.update(options)
    return choose_pod_network(wanted, **settings)  # type: ignore[arg-type]


def test_with_root_pods_get_namespaces_capture_and_the_control_plane_the_bridge() -> None:
    assert choose() == PodNetworkChoice("netns", "10.244.0.1", True)
    assert choose(pod_cidr="10.10.3.0/24") == PodNetworkChoice("netns", "10.10.3.1", True)
    assert choose(interception="on") == PodNetworkChoice("netns", "10.244.0.1", True)
    assert choose("netns", interception="auto").interception
    # Off on request: namespaces, the sidecar as the apps' HTTP proxy.
    assert choose(interception="off") == PodNetworkChoice("netns", "10.244.0.1", False)


def test_without_root_loopback_no_capture_and_one_line_saying_why() -> None:
    choice = choose(unavailable=NOT_ROOT)
    assert (choice.network, choice.control_address) == ("loopback", "127.0.0.1")
    assert not choice.interception
    assert choice.notice == (
        "pods on loopback addresses, no network namespaces or traffic interception "
        "(apps use their sidecar as HTTP proxy): " + NOT_ROOT
    )


def test_a_control_address_off_the_bridge_keeps_loopback() -> None:
    choice = choose(control_address="127.0.0.1")
    assert (choice.network, choice.control_address, choice.interception) == (
        "loopback",
        "127.0.0.1",
        False,
    )
    assert "not the bridge's 10.244.0.1" in choice.notice
    assert choose("loopback") == PodNetworkChoice("loopback", "127.0.0.1", False)
    assert choose(platform="local") == PodNetworkChoice("loopback", "127.0.0.1", False)


@pytest.mark.parametrize(
    ("wanted", "options", "message"),
    [
        ("netns", {"unavailable": NOT_ROOT}, "--pod-network netns: not root"),
        ("auto", {"unavailable": NOT_ROOT, "interception": "on"}, "--interception on needs"),
        ("loopback", {"interception": "on"}, "--interception on needs"),
        ("auto", {"interception": "yes"}, "--interception must be one of"),
        ("auto", {"pod_cidr": "10.244.0.1/24"}, "host bits set"),
    ],
)
def test_what_cannot_work_is_refused(wanted, options, message) -> None:
    with pytest.raises(ValueError, match=message):
        choose(wanted, **options)


def test_a_run_folder_the_sidecars_cannot_reach_is_said_before_anything_starts() -> None:
    top = pathlib.Path(tempfile.mkdtemp(dir="/tmp"))  # /tmp: every folder above is open
    try:
        top.chmod(0o755)
        closed = top / "home"
        closed.mkdir(mode=0o700)
        closed.chmod(0o700)
        inside = Topology(run_dir=closed / "run", platform="kube")
        assert str(closed) in sidecar_reach_problem(inside, euid=0)
        reachable = Topology(run_dir=top / "run", platform="kube")
        assert sidecar_reach_problem(reachable, euid=0) == ""
        # Not root: the kubelet runs every container as its own user, which reaches it.
        assert sidecar_reach_problem(inside, euid=1000) == ""
        # The local platform's launcher runs the sidecars as itself too.
        assert sidecar_reach_problem(Topology(run_dir=closed / "run"), euid=0) == ""
    finally:
        shutil.rmtree(top)
