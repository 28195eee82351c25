"""The rules istio-iptables builds from Istio's flags, as the istio-init container passes them."""

from __future__ import annotations

import pathlib

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


def _dns_config(tmp_path: pathlib.Path, *argv: str, resolv: str) -> rules.CaptureConfig:
    path = tmp_path / "resolv.conf"
    path.write_text(resolv)
    config, _ = cmd.parse_args([*DEFAULT_ARGS, *argv], environ={}, resolv_conf=path)
    return config


def test_dns_capture_sends_the_apps_queries_to_the_agent(tmp_path: pathlib.Path) -> None:
    resolv = "search default.svc.cluster.local\nnameserver 10.96.0.10\nnameserver fd00::a\n"
    config = _dns_config(tmp_path, "--redirect-dns", resolv=resolv)
    assert config.dns_servers == ("10.96.0.10",)  # no ip6tables: the IPv6 one is left
    got = rules.nat_rules(config)
    assert ":ISTIO_OUTPUT_DNS - [0:0]" in got
    assert "-A OUTPUT -j ISTIO_OUTPUT" in got  # UDP too, not only TCP
    outbound = [r for r in got if r.startswith(("-A ISTIO_OUTPUT ", "-A ISTIO_OUTPUT_DNS "))]
    assert outbound[1:] == [
        "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m multiport ! --dports 53,15008 -m owner --uid-owner 1337 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_OUTPUT -o lo -p tcp -m tcp ! --dport 53 -m owner ! --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --uid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -p tcp -m tcp ! --dport 15008 -m owner --gid-owner 1337 -j ISTIO_IN_REDIRECT",
        "-A ISTIO_OUTPUT -o lo -p tcp -m tcp ! --dport 53 -m owner ! --gid-owner 1337 -j RETURN",
        "-A ISTIO_OUTPUT -m owner --gid-owner 1337 -j RETURN",
        # Only after the proxy's own traffic has returned: the agent's upstream queries pass.
        "-A ISTIO_OUTPUT -j ISTIO_OUTPUT_DNS",
        "-A ISTIO_OUTPUT_DNS -p tcp -m tcp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-ports 15053",
        "-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -d 10.96.0.10/32 -j REDIRECT --to-ports 15053",
        "-A ISTIO_OUTPUT -d 127.0.0.1/32 -j RETURN",
        "-A ISTIO_OUTPUT -j ISTIO_REDIRECT",
    ]  # fmt: skip
    raw = rules.raw_rules(config)
    assert (
        "-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -m owner --uid-owner 1337 -j CT --zone 1"
        in raw
    )
    assert (
        "-A ISTIO_OUTPUT_DNS -p udp -m udp --sport 15053 -m owner --gid-owner 1337 -j CT --zone 2"
        in raw
    )
    assert raw[-2:] == [
        "-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -d 10.96.0.10/32 -j CT --zone 2",
        "-A ISTIO_INBOUND -p udp -m udp --sport 53 -s 10.96.0.10/32 -j CT --zone 1",
    ]  # fmt: skip
    table = rules.restore_input(got, raw)
    assert table.index("*raw") < table.index("*nat")
    assert table.count("COMMIT") == 2


def test_the_sidecars_dns_capture_variable_turns_it_on(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 10.103.64.1\n")
    environ = {"ISTIO_META_DNS_CAPTURE": "true", "CAPTURE_ALL_DNS": "true"}
    config, _ = cmd.parse_args(DEFAULT_ARGS, environ=environ, resolv_conf=path)
    assert config.captures_dns
    assert config.capture_all_dns
    assert config.dns_servers == ()
    got = rules.nat_rules(config)
    assert "-A ISTIO_OUTPUT_DNS -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053" in got


def test_dns_capture_is_off_without_a_nameserver_or_unless_asked(tmp_path: pathlib.Path) -> None:
    config = _dns_config(tmp_path, "--redirect-dns", resolv="search default.svc.cluster.local\n")
    assert not config.captures_dns
    assert rules.raw_rules(config) == []
    assert ":ISTIO_OUTPUT_DNS - [0:0]" not in rules.nat_rules(config)
    assert not _dns_config(tmp_path, resolv="nameserver 10.96.0.10\n").captures_dns


def test_an_unreadable_resolv_conf_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(rules.CaptureError, match=r"cannot read .*resolv\.conf"):
        cmd.parse_args([*DEFAULT_ARGS, "--redirect-dns"], environ={},
                       resolv_conf=tmp_path / "resolv.conf")  # fmt: skip


def test_resolv_conf_nameservers() -> None:
    text = (
        "# c\nnameserver 10.0.0.1 # x\nnameserver bogus\nnameserver 10.0.0.1\nnameserver 10.0.0.2\n"
    )
    assert rules.parse_resolv_nameservers(text) == ("10.0.0.1", "10.0.0.2")
