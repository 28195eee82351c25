import pathlib
import ssl

from tools.bench import benchmesh, loadgen, security_handshake
from tools.local.mesh import Mesh
from tools.local.topology import Topology


def _bench(tmp_path: pathlib.Path) -> benchmesh.BenchMesh:
    topology = Topology(run_dir=tmp_path, subnet="127.0.11", control_address="127.0.11.100")
    return benchmesh.BenchMesh(Mesh(topology))  # never started


def _load(latencies: list[float], errors: int = 0) -> loadgen.LoadResult:
    return loadgen.LoadResult(
        rate=100.0,
        duration=1.0,
        latencies=latencies,
        service=latencies,
        errors=errors,
        error_samples=["RuntimeError: HTTP 503"] if errors else [],
        send_lag=[0.0] * (len(latencies) + errors),
        send_span=1.0,
        wall=1.0,
        cpu=0.1,
    )


def test_targets_go_through_productpage_sidecar_or_straight_to_details(
    tmp_path: pathlib.Path,
) -> None:
    bench = _bench(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    mtls = {t.name: t for t in security_handshake.targets(bench, context)}
    plain = {t.name: t for t in security_handshake.targets(bench, None)}
    assert set(mtls) == {
        "sidecar_keepalive",
        "sidecar_new_connection",
        "direct_mtls_keepalive",
        "direct_mtls_new_connection",
    }
    sidecar = mtls["sidecar_new_connection"]
    assert sidecar.proxy == "http://127.0.11.2:15001"
    assert sidecar.new_connection
    assert sidecar.url == "http://details:9080/details/0"
    assert sidecar.tls is None
    direct = mtls["direct_mtls_keepalive"]
    assert direct.url == "https://127.0.11.3:15006/details/0"
    assert direct.tls is context
    assert direct.proxy is None
    assert not direct.new_connection
    assert plain["direct_plaintext_new_connection"].url == "http://127.0.11.3:15006/details/0"
    assert plain["direct_plaintext_new_connection"].tls is None


def test_combine_pools_the_rounds_and_sums_the_counters() -> None:
    target = security_handshake.Target("direct_mtls_new_connection", "https://x", True)
    runs = [
        security_handshake.Run(
            load=_load([0.001, 0.002]),
            client_sidecar={"tls_handshakes": 0},
            details_sidecar={"tls_handshakes": 2, "connections": 2},
            open_tls=1,
            open_plaintext=0,
            envoy_cpu={"details": 0.004},
        ),
        security_handshake.Run(
            load=_load([0.003], errors=1),
            client_sidecar={"tls_handshakes": 1},
            details_sidecar={"tls_handshakes": 1, "connections": 2},
            open_tls=0,
            open_plaintext=0,
            envoy_cpu={"details": 0.002},
        ),
    ]
    combined = security_handshake.combine(target, runs)
    assert combined["via"] == "direct"
    assert combined["new_connection_per_request"]
    assert (combined["sent"], combined["ok"], combined["errors"]) == (4, 3, 1)
    assert combined["latency"]["count"] == 3
    assert combined["latency"]["p50_ms"] == 2.0
    assert combined["latency"]["max_ms"] == 3.0
    assert combined["client_sidecar"] == {"tls_handshakes": 1}
    assert combined["details_sidecar"] == {"tls_handshakes": 3, "connections": 4}
    assert [r["details_open_tls"] for r in combined["rounds"]] == [1, 0]
    # 6 ms of details' Envoy over 4 requests sent; each round on its own too.
    assert combined["envoy_cpu_ms_per_request"] == {"details": 1.5}
    assert combined["rounds"][0]["envoy_cpu_ms_per_request"] == {"details": 2.0}
    assert combined["rounds"][1]["errors"] == 1


def test_combine_without_a_single_answer() -> None:
    target = security_handshake.Target("sidecar_keepalive", "http://details:9080/", False)
    run = security_handshake.Run(_load([], errors=2), {}, {}, 0, 0)
    combined = security_handshake.combine(target, [run])
    assert combined["latency"] is None
    assert combined["errors"] == 2
