"""Addresses for ServiceEntry hosts that have none (Istio's DNS auto-allocation).

A host with no `addresses`, not a wildcard and not resolution NONE (whose original
destination must be kept) gets one from the Class E range 240.240.0.0/16, never routable off
the pod, and one from 2001:2::/48 (the benchmarking range). Only proxies with
ISTIO_META_DNS_CAPTURE and ISTIO_META_DNS_AUTO_ALLOCATE use them: their DNS proxy answers the
host with the address and their TCP listeners are bound to it, so a TCP ServiceEntry without
an address is told apart by address instead of sharing 0.0.0.0:<port>.

As Istio's (pilot/pkg/serviceregistry/serviceentry/auto_allocation.go), deterministic for
every Pilot: each host hashes (FNV-1a of `<namespace>/<hostname>`) to a slot, collisions move
on by double hashing, and slots are numbered in order, skipping the .0 and .255 of each
/24. Pure functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from pilot.model.service import Resolution, Service

MAX_ADDRESSES = 255 * 255
PRIME = 65011  # the largest prime below MAX_ADDRESSES
_UNSPECIFIED = ("", "0.0.0.0")


def _fnv1a32(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return value


def wants_address(service: Service) -> bool:
    return (
        service.address in _UNSPECIFIED
        and not service.hostname.startswith("*")
        and service.resolution is not Resolution.PASSTHROUGH
    )


def allocate(services: Iterable[Service]) -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, hostname) -> (IPv4, IPv6) for every service that wants an address."""
    slots: list[tuple[str, str] | None] = [None] * MAX_ADDRESSES
    wanting = sorted({(s.namespace, s.hostname) for s in services if wants_address(s)})
    for key in wanting[:MAX_ADDRESSES]:
        hashed = _fnv1a32(f"{key[0]}/{key[1]}".encode())
        slot = hashed % MAX_ADDRESSES
        step = 1
        while slots[slot] is not None:
            # Istio's probe; its modulus is one less than the table, so the last slot is
            # reached only first-hand. Bounded: there are fewer keys than slots.
            slot = (hashed + step * (PRIME - hashed % PRIME)) % (MAX_ADDRESSES - 1)
            step += 1
        slots[slot] = key
    out = {}
    number = 0
    for taken in slots:
        number += 1
        if taken is None:
            continue
        if number % 255 == 0:
            number += 1
        third, fourth = divmod(number, 255)
        v6 = f"2001:2::f0f0:{fourth:x}" if third == 0 else f"2001:2::f0f0:{third:x}{fourth:x}"
        out[taken] = (f"240.240.{third}.{fourth}", v6)
    return out


def with_addresses(services: Iterable[Service]) -> list[Service]:
    """The services, those that want one carrying their auto-allocated addresses."""
    services = list(services)
    table = allocate(services)
    out = []
    for service in services:
        pair = table.get((service.namespace, service.hostname))
        if (
            pair is not None
            and (service.auto_allocated_address, service.auto_allocated_address_v6) != pair
        ):
            service = dataclasses.replace(
                service, auto_allocated_address=pair[0], auto_allocated_address_v6=pair[1]
            )
        out.append(service)
    return out
