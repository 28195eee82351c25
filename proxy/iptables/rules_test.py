"""The rules istio-iptables builds from Istio's flags, as the istio-init container passes them."""

from __future__ import annotations

import pytest

from proxy.iptables import cmd, rules

# What the injected istio-init container runs (the install's template, Istio's defaults).
DEFAULT_ARGS = ["-p", "15001", "-z", "15006", "-u", "1337", "-m", "REDIRECT", "-i", "*",
                "-x", "", "-b", "*", "-d", "15090,15021"]  # fmt: skip


def _rules(*argv: str) -> list[str]:
    config, dry_run = cmd.parse_args(list(argv))
    assert not dry_run
    return rules.nat_rules(config)


def test_the_default_capture_is_istios() -> None:
    got = _rules(*DEFAULT_ARGS)
    assert got[:4] == [f":{c} - [0:0]" for c in rules.CHAINS]
    assert got[4:] == [
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 15008 -j RETURN",
        "-A ISTIO_REDIRECT -p tcp -j REDIRECT --to-ports 15001",
        "-A ISTIO_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006",
        "-A PREROUTING -p tcp -j ISTIO_INBOUND",
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 15090 -j RETURN",
        "-A ISTIO_INBOUND -p tcp -m tcp --dport 15021 -j RETURN",
        "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT",
        "-A OUTPUT -p tcp -j ISTIO_OUTPUT",
        "-A ISTIO_OUTPUT -s 127.0.0.6/32 -o lo -j RETURN",
        "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_OUTPUT -o lo -p tcp -m tcp ! --dport 15008 -m owner ! --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_OUTPUT -o lo -p tcp -m tcp ! --dport 15008 -m owner ! --gid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
    ]  # fmt: skip


def test_the_traffic_annotations_narrow_the_capture() -> None:
    got = _rules("-i", "10.96.0.0/12,172.20.0.1/16", "-x", "10.96.0.10/32", "-b", "9080,9443",
                 "-o", "5432", "-q", "8080", "-c", "eth1")  # fmt: skip
    assert "-A ISTIO_INBOUND -p tcp -m tcp --dport 9080 -j ISTIO_IN_REDIRECT" in got
    assert "-A ISTIO_INBOUND -p tcp -j ISTIO_IN_REDIRECT" not in got
    outbound = [r for r in got if r.startswith("-A ISTIO_OUTPUT")]
    assert outbound[0] == "-A ISTIO_OUTPUT -p tcp -m tcp --dport 5432 -j RETURN"
    assert outbound[-5:] == [
        "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A ISTIO_OUTPUT -p tcp -m tcp --dport 8080 -j ISTIO_REDIRECT",
        "-A ISTIO_OUTPUT -d 10.96.0.10/32 -j RETURN",
        "-A ISTIO_OUTPUT -d 10.96.0.0/12 -j ISTIO_REDIRECT",
        "-A ISTIO_OUTPUT -d 172.20.0.0/16 -j ISTIO_REDIRECT",  # the network, as iptables writes it
    ]
    assert got[4:6] == ["-A PREROUTING -i eth1 -j RETURN", "-A OUTPUT -o eth1 -j RETURN"]


def test_nothing_captured_when_asked_for_none() -> None:
    assert _rules("-m", "NONE") == []
    got = _rules("-i", "", "-b", "")
    assert not any("-j ISTIO_INBOUND" in r or r.endswith("-j ISTIO_REDIRECT") for r in got)


def test_a_port_excluded_twice_is_excluded_by_one_rule() -> None:
    config, _ = cmd.parse_args([*DEFAULT_ARGS[:-2], "-d", "15020,15021,15090,15020",
                                "-o", "9000,09000"])  # fmt: skip
    nat = rules.nat_rules(config)
    assert nat.count("-A ISTIO_INBOUND -p tcp -m tcp --dport 15020 -j RETURN") == 1
    assert nat.count("-A ISTIO_OUTPUT -p tcp -m tcp --dport 9000 -j RETURN") == 1
    assert config.inbound_ports_exclude == ("15020", "15021", "15090")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-m", "TPROXY"], "-m TPROXY: only REDIRECT (or NONE) is supported"),
        (["-d", "15090,http"], "-d: 'http' is not a port"),
        (["-p", "70000"], "-p: '70000' is not a port"),
        (["-x", "10.0.0.0/33"], "-x: '10.0.0.0/33' is not a CIDR"),
        (["-i", "fd00::/8"], "IPv6 capture (ip6tables) is not supported"),
        (["-u", "istio-proxy"], "-u: 'istio-proxy' is not a list of numeric ids"),
        (["--no-such-flag"], "bad arguments"),
    ],
)
def test_bad_flags_are_refused_naming_the_flag(argv: list[str], message: str) -> None:
    def rules_for(argv: list[str]) -> list[str]:
        config, _ = cmd.parse_args(argv)
        return rules.nat_rules(config)

    # Either step may refuse: parsing (bad flags) or building the rules (IPv6).
    with pytest.raises(rules.CaptureError) as caught:
        rules_for(argv)
    assert message in str(caught.value)


def test_dry_run_prints_a_restore_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd.main([*DEFAULT_ARGS, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("*nat\n:ISTIO_INBOUND - [0:0]\n")
    assert out.endswith("COMMIT\n")
    assert cmd.main(["-m", "TPROXY"]) == 1
    assert capsys.readouterr().err.startswith("istio-iptables: -m TPROXY")
