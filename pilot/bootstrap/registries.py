"""The service registries `--registries` names, built and merged in that order.

One `match` arm per provider (`pilot/registry/provider.py`). A provider this Pilot cannot
run, or one without what it needs (Consul's or Eureka's URL, Kubernetes' credentials), is refused at start-up with a
clear message rather than silently ignored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from pilot.model.discovery import ServiceRegistry
from pilot.model.service import DOMAIN_SUFFIX
from pilot.registry.aggregate import AggregateRegistry
from pilot.registry.consul.client import ConsulAddress, PyConsulClient
from pilot.registry.consul.controller import ConsulOptions, ConsulRegistry
from pilot.registry.eureka.client import PyEurekaClient
from pilot.registry.eureka.controller import EurekaOptions, EurekaRegistry
from pilot.registry.kube.client import Connecting, Credentials
from pilot.registry.kube.controller import KubeOptions, KubeRegistry
from pilot.registry.provider import Provider
from pilot.registry.serviceentry.controller import ServiceEntryRegistry

DEFAULT = (Provider.SERVICE_ENTRY,)


class RegistryUnavailableError(ValueError):
    """A registry `--registries` names that this Pilot cannot run."""


@dataclasses.dataclass(frozen=True)
class PlatformOptions:
    """Where the platform registries are (Istio's pilot-discovery flags)."""

    consul_url: str = ""  # --consulserverURL
    consul_interval: float = 2.0  # --consulserverInterval, seconds
    eureka_url: str = ""  # --eurekaserverURL
    eureka_interval: float = 2.0  # --eurekaserverInterval, seconds
    kubeconfig: str = ""  # --kubeconfig ("" : in-cluster credentials, or $KUBECONFIG)
    domain: str = DOMAIN_SUFFIX  # --domain: Kubernetes services are <name>.<ns>.svc.<domain>
    trust_domain: str = DOMAIN_SUFFIX


@dataclasses.dataclass(frozen=True)
class Registries:
    aggregate: AggregateRegistry
    service_entries: ServiceEntryRegistry | None  # fed from the config store, if listed


def build(providers: Sequence[Provider], platforms: PlatformOptions | None = None) -> Registries:
    platforms = platforms or PlatformOptions()
    members: list[ServiceRegistry] = []
    service_entries: ServiceEntryRegistry | None = None
    for provider in providers:
        match provider:
            case Provider.SERVICE_ENTRY:
                service_entries = ServiceEntryRegistry()
                members.append(service_entries)
            case Provider.CONSUL:
                if not platforms.consul_url:
                    raise RegistryUnavailableError("registry Consul needs --consulserverURL")
                try:
                    address = ConsulAddress.parse(platforms.consul_url)
                except ValueError as error:
                    raise RegistryUnavailableError(str(error)) from None
                options = ConsulOptions(interval=platforms.consul_interval)
                members.append(ConsulRegistry(client=PyConsulClient(address), options=options))
            case Provider.EUREKA:
                if not platforms.eureka_url:
                    raise RegistryUnavailableError("registry Eureka needs --eurekaserverURL")
                if not platforms.eureka_url.startswith(("http://", "https://")):
                    raise RegistryUnavailableError(
                        f"--eurekaserverURL {platforms.eureka_url!r}: want http[s]://host:port/eureka/"
                    )
                client = PyEurekaClient(platforms.eureka_url)
                members.append(
                    EurekaRegistry(
                        client=client, options=EurekaOptions(interval=platforms.eureka_interval)
                    )
                )
            case Provider.KUBERNETES:
                try:
                    credentials = Credentials.find(platforms.kubeconfig)
                except ValueError as error:
                    raise RegistryUnavailableError(str(error)) from None
                kube = KubeOptions(domain=platforms.domain, trust_domain=platforms.trust_domain)
                members.append(KubeRegistry(client=Connecting(credentials), options=kube))
            case Provider.MOCK:
                raise RegistryUnavailableError(
                    f"registry {provider.value} is not available in this Pilot yet; available: "
                    f"{Provider.SERVICE_ENTRY.value}, {Provider.KUBERNETES.value}, "
                    f"{Provider.CONSUL.value}, {Provider.EUREKA.value}"
                )
    return Registries(AggregateRegistry(members), service_entries)
