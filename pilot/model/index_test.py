"""ServiceIndex: a frozen view of the registries, refreshed by hostname."""

from __future__ import annotations

from pilot.model.index import ServiceIndex
from pilot.model.service import Endpoint, Port, Protocol, Service
from pilot.registry.memory import MemoryRegistry

HTTP = Port("http", 80, Protocol.HTTP)


def service(hostname: str) -> Service:
    return Service(hostname=hostname, namespace="default", ports=(HTTP,))


def at(hostname: str, address: str) -> Endpoint:
    return Endpoint(hostname, HTTP, address, 80, {}, "default")


def registry() -> MemoryRegistry:
    memory = MemoryRegistry()
    for name in ("a", "b"):
        memory.add_service(service(f"{name}.example.com"))
    memory.set_instances("a.example.com", 80, [at("a.example.com", "127.60.0.1")])
    memory.set_instances("b.example.com", 80, [at("b.example.com", "127.60.0.1")])
    return memory


def test_instances_by_service_port_and_by_address():
    index = ServiceIndex.read(registry())
    assert set(index.services) == {"a.example.com", "b.example.com"}
    assert [e.address for e in index.endpoints_of("a.example.com", 80)] == ["127.60.0.1"]
    assert [e.hostname for e in index.endpoints_at("127.60.0.1")] == [
        "a.example.com",
        "b.example.com",
    ]
    assert index.endpoints_at("127.60.0.9") == []


def test_refresh_re_reads_only_the_hostnames_given_and_keeps_the_rest():
    memory = registry()
    first = ServiceIndex.read(memory)
    memory.set_instances("a.example.com", 80, [at("a.example.com", "127.60.0.2")])
    memory.remove_service("b.example.com")
    memory.add_service(service("c.example.com"))
    second = first.refresh(memory, {"a.example.com"})
    assert [e.address for e in second.endpoints_of("a.example.com", 80)] == ["127.60.0.2"]
    assert second.endpoints_of("b.example.com", 80) is first.endpoints_of("b.example.com", 80)
    assert "c.example.com" not in second.services  # not asked to look
    assert [e.hostname for e in second.endpoints_at("127.60.0.1")] == ["b.example.com"]
    assert [e.hostname for e in second.endpoints_at("127.60.0.2")] == ["a.example.com"]
    assert first.endpoints_of("a.example.com", 80)[0].address == "127.60.0.1"  # frozen
    third = second.refresh(memory, {"b.example.com", "c.example.com"})
    assert set(third.services) == {"a.example.com", "c.example.com"}
    assert third.endpoints_at("127.60.0.1") == []
    assert third == ServiceIndex.read(memory)
