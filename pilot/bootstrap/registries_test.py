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
        parse_args(["--registries", "ServiceEntry,Consul"])
    assert (
        "--registries: registry Consul is not available in this Pilot yet"
        in capsys.readouterr().err
    )
