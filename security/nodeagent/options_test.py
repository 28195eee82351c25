import pathlib

import pytest

from security.nodeagent import keys
from security.nodeagent.options import parse_args


def test_defaults() -> None:
    options = parse_args(["--ca-root", "root-cert.pem"])
    assert options.ca_address == "127.0.0.1:8060"
    assert options.ca_root == pathlib.Path("root-cert.pem")
    assert options.token_file is None
    assert options.trust_domain == "cluster.local"
    assert options.ttl == 24 * 3600
    assert options.grace_ratio == 0.5
    assert options.key_type is keys.KeyType.EC
    assert options.workloads_path == pathlib.Path("run/nodeagent/workloads")
    assert options.reserved == {"spiffe://cluster.local/ns/istio-system/sa/istiod"}
    assert options.status_host_port == ("127.0.0.1", 15030)


def test_every_flag() -> None:
    options = parse_args(
        [
            "--ca-address=ca.local:15012",
            "--ca-root=/etc/cacerts/root-cert.pem",
            "--token-file=/var/run/secrets/tokens/istio-token",
            "--ca-server-name=istiod.istio-system.svc",
            "--run-dir=/tmp/agent",
            "--workloads-dir=/tmp/workloads",
            "--reserved-identity=spiffe://example.org/ns/istio-system/sa/istiod",
            "--reserved-identity=spiffe://example.org/ns/istio-system/sa/broker",
            "--trust-domain=example.org",
            "--ttl=90m",
            "--grace-ratio=0.25",
            "--key-type=rsa",
            "--status-address=127.0.1.9:0",
            "--node-name=node-1",
            "--pod-sockets-dir=/var/run/sds/pods",
            "--kubeconfig=/etc/kube/config",
        ]
    )
    assert options.ca_address == "ca.local:15012"
    assert options.token_file == pathlib.Path("/var/run/secrets/tokens/istio-token")
    assert options.ca_server_name == "istiod.istio-system.svc"
    assert options.workloads_path == pathlib.Path("/tmp/workloads")
    assert options.reserved == {
        "spiffe://example.org/ns/istio-system/sa/istiod",
        "spiffe://example.org/ns/istio-system/sa/broker",
    }
    assert options.trust_domain == "example.org"
    assert options.ttl == 5400
    assert options.grace_ratio == 0.25
    assert options.key_type is keys.KeyType.RSA
    assert options.status_host_port == ("127.0.1.9", 0)
    assert options.node_name == "node-1"
    assert options.pod_sockets_dir == pathlib.Path("/var/run/sds/pods")
    assert options.kubeconfig == "/etc/kube/config"


def test_workloads_folder_defaults_under_the_run_dir() -> None:
    options = parse_args(["--ca-root=r", "--run-dir=/tmp/x", "--trust-domain=example.org"])
    assert options.workloads_path == pathlib.Path("/tmp/x/workloads")
    assert options.reserved == {"spiffe://example.org/ns/istio-system/sa/istiod"}


@pytest.mark.parametrize(
    "flags",
    [
        [],
        ["--ttl=soon"],
        ["--ttl=0s"],
        ["--grace-ratio=1.5"],
        ["--key-type=dsa"],
        ["--ca-address=nohost"],
        ["--status-address=:x"],
        ["--node-name=node-1"],
        ["--pod-sockets-dir=/var/run/sds/pods"],
        ["--node-name=node-1", "--pod-sockets-dir=relative/pods"],
        ["--kubeconfig=/etc/kube/config"],
    ],
)
def test_bad_flags_exit_with_usage(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    args = flags if flags == [] else ["--ca-root=r", *flags]
    with pytest.raises(SystemExit) as raised:
        parse_args(args)
    assert raised.value.code == 2
    assert "usage: node_agent" in capsys.readouterr().err


def test_ttl_is_a_go_duration() -> None:
    assert parse_args(["--ca-root=r", "--ttl=1h30m"]).ttl == 5400


def test_a_bad_ttl_exits_with_usage(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--ca-root=r", "--ttl=1x"])
    assert "invalid duration '1x'" in capsys.readouterr().err
