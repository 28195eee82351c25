import os

import pytest

from pkg.config import loader
from tools.bench import security_parse as parse

READY_LOG = (
    "2026-11-21 20:59:01,123 INFO security.ca loading\n"
    "2026-11-21 20:59:01,456 INFO security.ca istio-ca ready: gRPC TLS on 127.0.0.1:40123, "
    "mTLS on (off), HTTP on 127.0.0.1:40124; self-signed CA for cluster.local, root sha256 ab\n"
)

CERTS = {
    "certificates": [
        {
            "ca_cert": [{"serial_number": "aa", "subject_alt_names": []}],
            "cert_chain": [],
        },
        {
            "ca_cert": [{"serial_number": "aa", "subject_alt_names": []}],
            "cert_chain": [
                {
                    "serial_number": "5d6f",
                    "subject_alt_names": [
                        {"uri": "spiffe://cluster.local/ns/default/sa/bookinfo-details"}
                    ],
                }
            ],
        },
    ]
}

SECRETS = [
    {"identity": "spiffe://cluster.local/ns/default/sa/a", "watchers": 2, "serial": "01"},
    {"identity": "spiffe://cluster.local/ns/default/sa/b", "watchers": 0, "serial": None},
]


def _proxy(*states: str) -> dict:
    return {"pod": "p", "types": {f"T{i}": {"state": s} for i, s in enumerate(states)}}


def test_parse_ca_ready_reads_the_bound_addresses() -> None:
    found = parse.parse_ca_ready(READY_LOG)
    assert found == parse.CaAddresses("127.0.0.1:40123", None, "127.0.0.1:40124")
    with_mtls = READY_LOG.replace("(off)", "127.0.0.1:40125")
    with_mtls_found = parse.parse_ca_ready(with_mtls)
    assert with_mtls_found is not None
    assert with_mtls_found.mtls == "127.0.0.1:40125"
    assert parse.parse_ca_ready(READY_LOG.splitlines()[0]) is None


def test_cpu_ticks_adds_user_and_system_time_after_the_command_name() -> None:
    # utime (field 14) 250, stime (field 15) 50; the name holds a space and a ")".
    fields = ["S", "1", "2", "3", "0", "-1", "0", "0", "0", "0", "0", "250", "50", "0", "0"]
    stat = "1234 (a b) c) " + " ".join(fields)
    assert parse.cpu_ticks(stat) == 300


def test_process_cpu_seconds_of_this_process_grows_with_work() -> None:
    before = parse.process_cpu_seconds(os.getpid())
    total = 0
    while parse.process_cpu_seconds(os.getpid()) == before:
        total += sum(range(10_000))
    assert parse.process_cpu_seconds(os.getpid()) > before
    with pytest.raises(FileNotFoundError):
        parse.process_cpu_seconds(2**22 + 7)  # above the kernel's pid_max default


def test_workload_serial_finds_the_spiffe_certificate_only() -> None:
    assert parse.workload_serial(CERTS) == "5d6f"
    assert (
        parse.workload_serial(CERTS, "spiffe://cluster.local/ns/default/sa/bookinfo-details")
        == "5d6f"
    )
    assert parse.workload_serial(CERTS, "spiffe://cluster.local/ns/default/sa/other") is None
    only_roots = {"certificates": CERTS["certificates"][:1]}
    assert parse.workload_serial(only_roots) is None
    assert parse.workload_serial({}) is None


def test_node_agent_status_lookups() -> None:
    assert parse.watchers(SECRETS, "spiffe://cluster.local/ns/default/sa/a") == 2
    assert parse.watchers(SECRETS, "spiffe://cluster.local/ns/default/sa/zz") == 0
    assert parse.has_certificate(SECRETS, "spiffe://cluster.local/ns/default/sa/a")
    assert not parse.has_certificate(SECRETS, "spiffe://cluster.local/ns/default/sa/b")
    assert not parse.has_certificate(SECRETS, "spiffe://cluster.local/ns/default/sa/zz")


def test_parse_stats_and_sum() -> None:
    text = (
        "cluster.outbound|9080||details.default.svc.cluster.local.ssl.handshake: 3\n"
        "cluster.outbound|9080|v1|details.default.svc.cluster.local.ssl.handshake: 4\n"
        "cluster.outbound|9080||details.default.svc.cluster.local.upstream_cx_total: 9\n"
        "http.inbound.downstream_rq_time: P0(nan,1.0) P25(nan,2.0)\n"
        "gauge.negative: -1\n"
    )
    stats = parse.parse_stats(text)
    assert "http.inbound.downstream_rq_time" not in stats
    assert stats["gauge.negative"] == -1
    assert parse.stat_sum(stats, r"details\.default\.svc\.cluster\.local\.ssl\.handshake$") == 7
    assert parse.stat_sum(stats, r"nothing") == 0


def test_all_synced_needs_every_type_acknowledged_and_enough_proxies() -> None:
    synced = {"proxies": [_proxy("SYNCED", "NOT SENT"), _proxy("SYNCED")]}
    assert parse.all_synced(synced, expected_proxies=2)
    assert not parse.all_synced(synced, expected_proxies=3)
    assert not parse.all_synced({"proxies": [_proxy("SYNCED"), _proxy("STALE")]})
    assert not parse.all_synced({"proxies": [{"pod": "p", "types": {}}]})
    assert parse.pushes({"counters": {"pushes": 4}}) == 4
    assert parse.pushes({}) == 0


def test_peer_authentication_loads_as_the_policy_it_describes() -> None:
    text = parse.peer_authentication("details-plaintext", "default", "details", "DISABLE")
    [policy] = loader.load_text(text, source="test")
    assert policy.schema.kind == "PeerAuthentication"
    assert policy.metadata.name == "details-plaintext"
    assert dict(policy.spec.selector.match_labels) == {"app": "details"}
    assert policy.spec.mtls.mode == policy.spec.mtls.DISABLE
