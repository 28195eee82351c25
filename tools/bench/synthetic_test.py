import collections

from pilot.networking import generator
from pilot.networking.testing import push_of
from tools.bench import synthetic


def test_resource_counts_per_kind() -> None:
    resources = synthetic.resources(7)
    kinds = collections.Counter(r.schema.kind for r in resources)
    assert kinds == {
        "Gateway": 1,
        "ServiceEntry": 7,
        "WorkloadEntry": 21,
        "DestinationRule": 7,
        "VirtualService": 3,  # services 0, 3 and 6
    }
    assert {r.metadata.namespace for r in resources if r.schema.kind == "ServiceEntry"} == {
        f"ns-{i}" for i in range(7)
    }


def test_workload_addresses_are_unique_loopback_addresses() -> None:
    addresses = [w.address for w in synthetic.workloads(1000)]
    assert len(set(addresses)) == 3000
    assert all(a.startswith("127.") for a in addresses)
    assert synthetic.workload_address(0) == "127.20.0.1"
    assert synthetic.workload_address(250) == "127.20.1.1"


def test_sidecars_spread_over_the_mesh() -> None:
    proxies = synthetic.sidecars(100, 10)
    assert len(proxies) == 10
    assert len({p.ip for p in proxies}) == 10
    first = proxies[0]
    assert (first.pod, first.labels) == ("svc-0-v1", {"app": "svc-0", "version": "v1"})
    assert first.node_id == "sidecar~127.20.0.1~svc-0-v1.ns-0~ns-0.svc.cluster.local"
    assert synthetic.router().node_id.startswith("router~")


def test_generators_accept_the_synthetic_mesh() -> None:
    push = push_of(synthetic.by_kind(synthetic.resources(6)))
    assert len(push.services) == 6
    sidecar, router = synthetic.sidecars(6, 1)[0], synthetic.router()

    clusters = generator.generate(sidecar, generator.CLUSTER, [], push)
    # Per service: the default cluster and one per subset; plus inbound and BlackHole.
    assert len(clusters) == 6 * 4 + 2
    eds = [name for name, c in clusters if c.type == c.EDS]
    assert len(eds) == 24
    assignments = generator.generate(sidecar, generator.ENDPOINT, eds, push)
    by_name = {name: a for name, a in assignments}
    default = by_name[f"outbound|8080||{synthetic.hostname_of(0)}"]
    assert len(default.endpoints[0].lb_endpoints) == 3
    assert (
        len(by_name[f"outbound|8080|v2|{synthetic.hostname_of(0)}"].endpoints[0].lb_endpoints) == 1
    )

    listeners = generator.generate(sidecar, generator.LISTENER, [], push)
    assert len(listeners) == 2
    [(_, route)] = generator.generate(sidecar, generator.ROUTE, [], push)
    assert len(route.virtual_hosts) == 6 + 1  # every service, and the block-all host

    assert len(generator.generate(router, generator.LISTENER, [], push)) == 1
    [(_, gateway_route)] = generator.generate(router, generator.ROUTE, [], push)
    assert len(gateway_route.virtual_hosts) == 2  # the VirtualServices of services 0 and 3
