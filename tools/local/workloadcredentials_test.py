"""The entries the launcher and the kubelet hand the node agent, read back as it reads them."""

from __future__ import annotations

import json
import pathlib
import stat

from tools.local.topology import Topology
from tools.local.workloadcredentials import (
    LAUNCHER_PREFIX,
    WorkloadCredentials,
    write_launcher_entries,
)


def test_an_entry_binds_the_socket_to_the_service_accounts_identity(tmp_path: pathlib.Path):
    credentials = WorkloadCredentials(folder=tmp_path / "workloads", sockets=tmp_path / "sds")
    socket = credentials.write(
        "kubelet-default_reviews-v1_1a2b3c4d",
        namespace="default",
        service_account="bookinfo-reviews",
        workload="default/reviews-v1",
        key="1a2b3c4d",
    )
    assert socket == tmp_path / "sds" / "1a2b3c4d" / "sds.sock"
    path = tmp_path / "workloads" / "kubelet-default_reviews-v1_1a2b3c4d.json"
    assert json.loads(path.read_text()) == {
        "identity": "spiffe://cluster.local/ns/default/sa/bookinfo-reviews",
        "socket": str(socket),
        "workload": "default/reviews-v1",
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "workloads").stat().st_mode) == 0o700
    assert [p.name for p in (tmp_path / "workloads").iterdir()] == [path.name]  # no temp left
    credentials.remove("kubelet-default_reviews-v1_1a2b3c4d")
    assert not path.exists()


def test_the_launcher_writes_one_entry_per_workload_it_runs(tmp_path: pathlib.Path):
    topology = Topology(run_dir=tmp_path, platform="local")
    credentials = topology.credentials()
    stale = credentials.write(
        f"{LAUNCHER_PREFIX}default_gone", namespace="default", service_account="x",
        workload="default/gone", key="00000000",
    )  # fmt: skip
    kept = credentials.write(
        "kubelet-default_other_11111111", namespace="default", service_account="y",
        workload="default/other", key="11111111",
    )  # fmt: skip
    sockets = write_launcher_entries(credentials, topology.launcher_workloads())
    entries = {
        p.name: json.loads(p.read_text()) for p in topology.workload_credentials.glob("*.json")
    }
    assert f"{LAUNCHER_PREFIX}default_gone.json" not in entries
    assert stale not in sockets
    assert "kubelet-default_other_11111111.json" in entries
    assert kept not in sockets
    gateway = entries[f"{LAUNCHER_PREFIX}istio-system_istio-ingressgateway.json"]
    assert gateway["identity"] == (
        "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
    )
    assert gateway["socket"] == str(topology.sds_socket("istio-system", "istio-ingressgateway"))
    reviews = next(p for p in topology.pods if p.app == "reviews")
    entry = entries[f"{LAUNCHER_PREFIX}default_{reviews.name}.json"]
    assert entry["identity"] == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews"
    # The socket the entry binds is the one the pod's pilot-agent is told.
    agent = next(s for s in topology.processes() if s.name == f"{reviews.name}-proxy")
    assert agent.argv[agent.argv.index("--sds-socket") + 1] == entry["socket"]
    assert len(sockets) == len(topology.pods) + 1
