"""The addresses and ports the store hands out to Services, as the API server allocates them.

A Service that needs a virtual IP gets the lowest free address of the service range
(`--service-cluster-ip-range`, Kubernetes' default 10.96.0.0/12; its first address is the
`kubernetes` Service's, as on a cluster), or keeps the one it asked for if that is in the range
and free; NodePort and LoadBalancer ports get node ports from 30000-32767 likewise. What is
taken is read from the stored Services each time, under the store's write lock, so an
allocation is never given twice and a deleted Service's address is free again.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from pilot.configstore import status
from pkg.config.kinds import KindSchema

DEFAULT_SERVICE_RANGE = "10.96.0.0/12"
_DEFAULT_NETWORK = ipaddress.IPv4Network(DEFAULT_SERVICE_RANGE)
NODE_PORTS = range(30000, 32768)
_HEADLESS = "None"


@dataclasses.dataclass(frozen=True)
class Allocator:
    service_range: ipaddress.IPv4Network = _DEFAULT_NETWORK

    @classmethod
    def parse(cls, cidr: str) -> Allocator:
        try:
            network = ipaddress.IPv4Network(cidr, strict=True)
        except ValueError as error:
            raise ValueError(f"--service-cluster-ip-range {cidr!r}: {error}") from None
        if network.num_addresses < 8:
            raise ValueError(f"--service-cluster-ip-range {cidr!r} is too small")
        return cls(network)

    def allocate(
        self,
        schema: KindSchema,
        name: str,
        spec: dict[str, Any],
        services: Iterable[Mapping[str, Any]],
    ) -> None:
        """Fills `spec` (a Service's, defaulted) with a cluster IP and node ports it lacks;
        raises 422 when it asks for ones that are taken or out of range."""
        taken_ips, taken_ports = _taken(services)
        kind = spec.get("type", "ClusterIP")
        if kind == "ExternalName":
            return
        wanted = spec.get("clusterIP") or ""
        if wanted == _HEADLESS:
            spec["clusterIPs"] = [_HEADLESS]
        else:
            spec["clusterIP"] = self._address(schema, name, wanted, taken_ips)
            spec["clusterIPs"] = [spec["clusterIP"]]
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        if kind in ("NodePort", "LoadBalancer"):
            for index, port in enumerate(spec.get("ports") or []):
                port["nodePort"] = _node_port(
                    schema, name, index, port.get("nodePort"), taken_ports
                )
                taken_ports.add(port["nodePort"])

    def _address(self, schema: KindSchema, name: str, wanted: str, taken: set[str]) -> str:
        if wanted:
            try:
                address = ipaddress.IPv4Address(wanted)
            except ValueError:
                raise _invalid(
                    schema, name, "spec.clusterIPs[0]", wanted, "must be a valid IP"
                ) from None
            if address not in self.service_range:
                raise _invalid(
                    schema,
                    name,
                    "spec.clusterIPs[0]",
                    wanted,
                    f"failed to allocate IP {wanted}: the provided IP ({wanted}) is not in "
                    f"the valid range. The range of valid IPs is {self.service_range}",
                )
            if wanted in taken:
                raise _invalid(
                    schema,
                    name,
                    "spec.clusterIPs[0]",
                    wanted,
                    f"failed to allocate IP {wanted}: provided IP is already allocated",
                )
            return wanted
        # The first address is the `kubernetes` Service's; the network and broadcast ones no one's.
        hosts = self.service_range.hosts()
        next(hosts)
        for address in hosts:
            if str(address) not in taken:
                return str(address)
        raise status.StatusError(
            500, "InternalError", "failed to allocate a serviceIP: range is full"
        )


def _node_port(schema: KindSchema, name: str, index: int, wanted: Any, taken: set[int]) -> int:
    if wanted:
        path = f"spec.ports[{index}].nodePort"
        if wanted not in NODE_PORTS:
            raise _invalid(
                schema, name, path, str(wanted),
                f"provided port is not in the valid range. The range of valid ports is "
                f"{NODE_PORTS.start}-{NODE_PORTS.stop - 1}",
            )  # fmt: skip
        if wanted in taken:
            raise _invalid(schema, name, path, str(wanted), "provided port is already allocated")
        return int(wanted)
    for port in NODE_PORTS:
        if port not in taken:
            return port
    raise status.StatusError(500, "InternalError", "failed to allocate a nodePort: range is full")


def _taken(services: Iterable[Mapping[str, Any]]) -> tuple[set[str], set[int]]:
    ips: set[str] = set()
    ports: set[int] = set()
    for service in services:
        spec = service.get("spec") or {}
        ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip)
        ports.update(p["nodePort"] for p in spec.get("ports") or [] if p.get("nodePort"))
    ips.discard(_HEADLESS)
    return ips, ports


def _invalid(
    schema: KindSchema, name: str, field: str, value: str, detail: str
) -> status.StatusError:
    return status.invalid_field(schema, name, field, f'Invalid value: "{value}": {detail}')
