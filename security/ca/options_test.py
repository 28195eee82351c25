import datetime
import pathlib

import pytest

from security.ca.options import CaOptions, parse_args, parse_duration

H = datetime.timedelta(hours=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", 24 * H),
        ("2160h", 90 * 24 * H),
        ("87600h", datetime.timedelta(days=3650)),
        ("1h30m", 1.5 * H),
        ("90s", datetime.timedelta(seconds=90)),
        ("500ms", datetime.timedelta(milliseconds=500)),
        ("90d", datetime.timedelta(days=90)),
        ("3600", H),
    ],
)
def test_durations_are_written_as_go_writes_them(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "h", "24 hours", "1y", "-5h", "1h-5m"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


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
