"""`--registries`: Istio's values, ServiceEntry working, the others refused with a reason."""

from __future__ import annotations

import pytest

from pilot.bootstrap import registries
from pilot.cmd.discovery import parse_args
from pilot.registry.provider import Provider
from pilot.registry.serviceentry.controller import ServiceEntryRegistry


def test_service_entry_is_the_default_and_the_first_member():
    built = registries.build(registries.DEFAULT)
    assert isinstance(built.service_entries, ServiceEntryRegistry)
    assert built.aggregate.registries == [built.service_entries]
    assert parse_args([]).registries == (Provider.SERVICE_ENTRY,)


def test_values_are_istios_names_in_order():
    assert Provider.parse_list("ServiceEntry, Kubernetes") == [
        Provider.SERVICE_ENTRY,
        Provider.KUBERNETES,
    ]
    with pytest.raises(
        ValueError, match="unknown registry 'kubernetes'; known: ServiceEntry, Kubernetes"
    ):
        Provider.parse_list("kubernetes")
    with pytest.raises(ValueError, match="listed twice"):
        Provider.parse_list("ServiceEntry,ServiceEntry")


def test_a_registry_this_pilot_lacks_is_refused_at_start(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        parse_args(["--registries", "ServiceEntry,Mock"])
    assert "--registries: registry Mock is not available in this Pilot" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--registries", "Consul"], "registry Consul needs --consulserverURL"),
        (["--registries", "Eureka"], "registry Eureka needs --eurekaserverURL"),
        (["--registries", "Consul", "--consulserverURL", "ftp://x"], "want http[s]://host[:port]"),
        (
            [
                "--registries",
                "Consul",
                "--consulserverURL",
                "http://x",
                "--consulserverInterval",
                "2",
            ],
            "--consulserverInterval",
        ),
    ],
)
def test_a_platform_registry_without_what_it_needs_is_refused(args, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(args)
    assert message in capsys.readouterr().err


def test_consul_and_eureka_join_the_aggregate_after_service_entries_in_order():
    options = parse_args(
        [
            "--registries", "ServiceEntry,Consul,Eureka",
            "--consulserverURL", "http://127.0.0.1:8500", "--consulserverInterval", "500ms",
            "--eurekaserverURL", "http://127.0.0.1:8761/eureka/",
        ]
    )  # fmt: skip
    assert options.platforms.consul_interval == 0.5
    built = registries.build(options.registries, options.platforms)
    assert [r.provider for r in built.aggregate.registries] == ["ServiceEntry", "Consul", "Eureka"]
