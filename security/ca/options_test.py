import datetime
import pathlib

import pytest

from security.ca.options import CaOptions, parse_args

H = datetime.timedelta(hours=1)


def test_ttl_flags_are_go_durations():
    ttls = ["--workload-cert-ttl", "1h30m", "--max-workload-cert-ttl", "2160h"]
    options, _ = parse_args(["--ca-dir", "/ca", "--tokens", "/t.yaml", *ttls])
    assert options.workload_cert_ttl == 1.5 * H
    assert options.max_workload_cert_ttl == datetime.timedelta(days=90)


@pytest.mark.parametrize("text", ["", "24 hours", "-5h", "0s", "90d", "3600"])
def test_a_bad_or_empty_ttl_is_refused(text, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--ca-dir", "/ca", "--tokens", "/t.yaml", "--workload-cert-ttl", text])
    assert "--workload-cert-ttl" in capsys.readouterr().err


def test_defaults_are_citadels():
    options, level = parse_args(["--ca-dir", "/ca", "--tokens", "/t.yaml"])
    assert options == CaOptions(ca_dir=pathlib.Path("/ca"), tokens=pathlib.Path("/t.yaml"))
    assert options.address == "127.0.0.1:8060"
    assert options.workload_cert_ttl == 24 * H
    assert options.max_workload_cert_ttl == datetime.timedelta(days=90)
    assert options.self_signed_ca_cert_ttl == datetime.timedelta(days=3650)
    assert options.key_type == "ec"
    assert level == "info"


def test_flags_override(capsys):
    options, _ = parse_args(
        [
            "--ca-dir=/ca",
            "--tokens=/t.yaml",
            "--address=127.0.1.9:9000",
            "--mtls-address=",
            "--trust-domain=example.org",
            "--workload-cert-ttl=1h",
            "--max-workload-cert-ttl=2h",
            "--self-signed-ca-cert-ttl=8760h",
            "--key-type=rsa",
        ]
    )
    assert options.address == "127.0.1.9:9000"
    assert options.mtls_address == ""
    assert options.trust_domain == "example.org"
    assert (options.workload_cert_ttl, options.max_workload_cert_ttl) == (H, 2 * H)
    assert options.self_signed_ca_cert_ttl == datetime.timedelta(days=365)
    assert options.key_type == "rsa"
    with pytest.raises(SystemExit):
        parse_args(["--ca-dir=/ca", "--tokens=/t", "--workload-cert-ttl=0s"])
    assert "must be positive" in capsys.readouterr().err


def test_custom_dns_names_as_citadel_writes_them(capsys):
    options, _ = parse_args(
        ["--ca-dir", "d", "--tokens", "t", "--custom-dns-names",
         "istiod.istio-system:istiod.istio-system.svc, istiod.istio-system:istiod.istio-system.svc.cluster.local"]
    )  # fmt: skip
    assert options.custom_dns_names == (
        ("istiod.istio-system", "istiod.istio-system.svc"),
        ("istiod.istio-system", "istiod.istio-system.svc.cluster.local"),
    )
    for bad in ["istiod:istiod.svc", "istiod.istio-system", "istiod.istio-system:Not_A_Host"]:
        with pytest.raises(SystemExit):
            parse_args(["--ca-dir", "d", "--tokens", "t", "--custom-dns-names", bad])
        assert "is not account.namespace:dns-name" in capsys.readouterr().err
