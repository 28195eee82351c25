"""The service registries `--registries` names, built and merged in that order.

One `match` arm per provider (`pilot/registry/provider.py`): the Kubernetes, Consul and
Eureka adapters plug in here as their arms are filled; until then they are refused at
start-up with a clear message rather than silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pilot.model.discovery import ServiceRegistry
from pilot.registry.aggregate import AggregateRegistry
from pilot.registry.provider import Provider
from pilot.registry.serviceentry.controller import ServiceEntryRegistry

DEFAULT = (Provider.SERVICE_ENTRY,)


class RegistryUnavailableError(ValueError):
    """A registry `--registries` names that this Pilot cannot run."""


@dataclasses.dataclass(frozen=True)
class Registries:
    aggregate: AggregateRegistry
    service_entries: ServiceEntryRegistry | None  # fed from the config store, if listed


def build(providers: Sequence[Provider]) -> Registries:
    members: list[ServiceRegistry] = []
    service_entries: ServiceEntryRegistry | None = None
    for provider in providers:
        match provider:
            case Provider.SERVICE_ENTRY:
                service_entries = ServiceEntryRegistry()
                members.append(service_entries)
            case Provider.KUBERNETES | Provider.CONSUL | Provider.EUREKA | Provider.MOCK:
                raise RegistryUnavailableError(
                    f"registry {provider.value} is not available in this Pilot yet; "
                    f"available: {Provider.SERVICE_ENTRY.value}"
                )
    return Registries(AggregateRegistry(members), service_entries)
