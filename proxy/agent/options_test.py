import pathlib

import pytest

from proxy.agent import options


def test_parse_a_sidecar_command_line() -> None:
    parsed = options.parse_args(
        [
            "proxy",
            "sidecar",
            "--ip",
            "127.0.1.5",
            "--pod",
            "reviews-v1",
            "--labels",
            "app=reviews,version=v1",
            "--annotations",
            "policy.istio.io/check=allow-on-error",
            "--service-account",
            "bookinfo-reviews",
            "--ports",
            "http=9080,grpc=9090",
            "--run-dir",
            "/tmp/pods/reviews-v1",
            "--drain-duration",
            "1m30s",
            "--envoy-binary",
            "/bin/true",
        ]
    )
    assert parsed.proxy_type == "sidecar"
    assert parsed.labels == {"app": "reviews", "version": "v1"}
    assert parsed.annotations == {"policy.istio.io/check": "allow-on-error"}
    assert parsed.ports == {"http": 9080, "grpc": 9090}
    assert parsed.drain_duration == 90.0
    assert parsed.register is True  # on by default for sidecars
    assert parsed.envoy_binary == pathlib.Path("/bin/true")
    assert parsed.discovery_address == "127.0.0.1:15010"
    assert parsed.config_store == "http://127.0.0.1:8001"
    assert parsed.cluster_id == "Kubernetes"
    assert parsed.concurrency == 1
    assert parsed.bootstrap_path == pathlib.Path("/tmp/pods/reviews-v1/envoy-rev.json")
    assert parsed.envoy_log_path == pathlib.Path("/tmp/pods/reviews-v1/envoy.log")
    assert parsed.admin_url == "http://127.0.1.5:15000"


def test_routers_do_not_register_unless_asked() -> None:
    base = ["proxy", "router", "--ip", "127.0.1.9", "--pod", "gw", "--run-dir", "/tmp/gw"]
    assert options.parse_args(base).register is False
    assert options.parse_args([*base, "--register"]).register is True
    sidecar = ["proxy", "sidecar", "--ip", "127.0.1.9", "--pod", "p", "--run-dir", "/tmp/p"]
    assert options.parse_args([*sidecar, "--no-register"]).register is False


def test_default_envoy_is_the_packaged_binary() -> None:
    parsed = options.parse_args(["proxy", "sidecar", "--ip=1.2.3.4", "--pod=p", "--run-dir=/r"])
    assert parsed.envoy_binary.name == "envoy"
    assert parsed.envoy_binary.exists()


def test_drain_duration_is_a_go_duration() -> None:
    argv = ["proxy", "sidecar", "--ip=1.2.3.4", "--pod=p", "--run-dir=/r", "--drain-duration=1m30s"]
    assert options.parse_args(argv).drain_duration == 90.0


def test_a_bad_drain_duration_is_refused() -> None:
    argv = ["proxy", "sidecar", "--ip=1.2.3.4", "--pod=p", "--run-dir=/r", "--drain-duration=5sx"]
    with pytest.raises(SystemExit):
        options.parse_args(argv)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--ports=http=99999", "is not a port number"),
        ("--ports=http", "expected key=value"),
        ("--labels=app", "expected key=value"),
        ("--drain-duration=soon", "invalid duration"),
        ("--envoy-binary=/nonexistent/envoy", "is not an executable file"),
    ],
)
def test_bad_flags_exit_with_a_usage_error(
    flag: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        options.parse_args(["proxy", "sidecar", "--ip=1.2.3.4", "--pod=p", "--run-dir=/r", flag])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_proxy_type_is_refused() -> None:
    with pytest.raises(ValueError, match="proxy type"):
        options.AgentOptions(proxy_type="ingress", ip="1.2.3.4", pod="p", run_dir=pathlib.Path())


def test_the_workload_is_the_injectors_name_for_it(monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["proxy", "sidecar", "--ip", "127.0.1.5", "--pod", "reviews-v1-7l5csrvdpf-785gv"]
    argv += ["--run-dir", "/tmp/unused"]
    monkeypatch.delenv("ISTIO_META_WORKLOAD_NAME", raising=False)
    assert options.parse_args(argv).workload_name == "reviews-v1-7l5csrvdpf-785gv"
    monkeypatch.setenv("ISTIO_META_WORKLOAD_NAME", "reviews-v1")
    assert options.parse_args(argv).workload_name == "reviews-v1"


def test_the_interception_mode_is_the_injectors(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["proxy", "sidecar", "--ip", "10.244.0.7", "--pod", "reviews-v1", "--run-dir", "/r"]
    monkeypatch.delenv("ISTIO_META_INTERCEPTION_MODE", raising=False)
    assert options.parse_args(argv).interception_mode == "NONE"
    monkeypatch.setenv("ISTIO_META_INTERCEPTION_MODE", "REDIRECT")
    assert options.parse_args(argv).interception_mode == "REDIRECT"
    monkeypatch.setenv("ISTIO_META_INTERCEPTION_MODE", "redirect")
    with pytest.raises(SystemExit):
        options.parse_args(argv)
    assert "ISTIO_META_INTERCEPTION_MODE must be one of" in capsys.readouterr().err


def test_dns_capture_is_the_sidecars_istio_meta_dns_capture(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sidecar = ["proxy", "sidecar", "--ip", "10.244.0.7", "--pod", "reviews-v1", "--run-dir", "/r"]
    router = ["proxy", "router", "--ip", "10.244.0.8", "--pod", "gw", "--run-dir", "/g"]
    monkeypatch.delenv("ISTIO_META_DNS_CAPTURE", raising=False)
    assert not options.parse_args(sidecar).dns_capture
    monkeypatch.setenv("ISTIO_META_DNS_CAPTURE", "true")
    parsed = options.parse_args(sidecar)
    assert parsed.dns_capture
    assert parsed.agent_xds_socket == pathlib.Path("/r/agent-xds.sock")
    assert not options.parse_args(router).dns_capture  # Istio's DNS proxy is a sidecar's
