"""Which platform a registry reads: Istio's `--registries` values, plus ServiceEntry.

Istio 0.8 named its registries Kubernetes, Consul, Eureka, CloudFoundry and Mock, and read
ServiceEntries (its "external" registry) always. Here the ServiceEntry/WorkloadEntry registry
is a value of its own, since on the local platform it is the whole service model. A new
registry is one member here and one `match` arm in `pilot/bootstrap/registries.py`.
"""

from __future__ import annotations

import enum


class Provider(enum.StrEnum):
    SERVICE_ENTRY = "ServiceEntry"
    KUBERNETES = "Kubernetes"
    CONSUL = "Consul"
    EUREKA = "Eureka"
    MOCK = "Mock"

    @classmethod
    def parse_list(cls, text: str) -> list[Provider]:
        """`Kubernetes,ServiceEntry` as providers, in order; ValueError names a bad value."""
        providers: list[Provider] = []
        for item in (part.strip() for part in text.split(",")):
            if not item:
                continue
            try:
                provider = cls(item)
            except ValueError:
                known = ", ".join(p.value for p in cls)
                raise ValueError(f"unknown registry {item!r}; known: {known}") from None
            if provider in providers:
                raise ValueError(f"registry {item!r} is listed twice")
            providers.append(provider)
        if not providers:
            raise ValueError("no registry given")
        return providers
