"""Benchmark: what locality load balancing costs EDS generation, for many proxies.

The synthetic mesh (`synthetic.py`, --services services, three WorkloadEntries each) with its
WorkloadEntries spread over three localities (v1 region1/zone1, v2 region1/zone2, v3
region2/zone3), in two variants:

- `default`: no outlier detection, so locality LB changes nothing and every proxy shares the
  endpoint table (the mesh as most users run it);
- `failover`: every DestinationRule has outlier detection, so every cluster's priorities
  depend on where the proxy runs.

For each, one push context is built and --proxies sidecars (spread over the three localities)
each ask for every EDS cluster, as Envoy does after CDS; the time of all their answers is
reported, with how many distinct answers were built (what sharing saved). Generation only,
in this process.

    PYTHONPATH=. .venv/bin/python tools/bench/locality_eds.py [--services 1000] [--proxies 2000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from pilot.model.push_context import MeshOptions
from pilot.networking import generator, locality_endpoints, names
from pilot.networking.testing import FakeProxy, push_of
from pkg.config import loader
from pkg.config.mesh import default_mesh_config
from tools.bench import report, synthetic

PLACES = {"v1": "region1/zone1/", "v2": "region1/zone2/", "v3": "region2/zone3/"}


def documents(services: int, failover: bool) -> list[dict[str, Any]]:
    docs = synthetic.documents(services)
    for doc in docs:
        if doc["kind"] == "WorkloadEntry":
            doc["spec"]["locality"] = PLACES[doc["spec"]["labels"]["version"]]
        if failover and doc["kind"] == "DestinationRule":
            doc["spec"]["trafficPolicy"] = {
                "outlierDetection": {"consecutive5xxErrors": 1, "interval": "1s"}
            }
    return docs


def run(services: int, proxies: int, failover: bool) -> dict[str, float]:
    resources = [loader.load_object(d, source="bench") for d in documents(services, failover)]
    push = push_of(synthetic.by_kind(resources), MeshOptions(mesh_config=default_mesh_config()))
    clusters = [
        names.outbound_cluster(s.hostname, p.number, subset)
        for s in push.services.values()
        for p in s.ports
        for subset in ("", *synthetic.VERSIONS)
    ]
    places = list(PLACES.values())
    fleet = [
        FakeProxy("sidecar", f"10.250.{n // 250}.{n % 250}", locality=places[n % len(places)])
        for n in range(proxies)
    ]
    wanted = frozenset(clusters)  # Pilot's streams share one name set per subscription
    answers = set()
    times = []
    for proxy in fleet:
        started = time.perf_counter()
        answers.add(id(generator.build_endpoints(proxy, push, wanted)))
        times.append(time.perf_counter() - started)
    # The first proxy at each locality builds what the others at it share.
    first = sum(times[: len(places)])
    rest = times[len(places) :]
    return {
        "clusters": len(clusters),
        "locality_clusters": len(locality_endpoints.of_push(push).policies),
        "distinct_answers": len(answers),
        "first_per_locality_s": first,
        "others_ms_per_proxy": 1000 * sum(rest) / len(rest),
        "all_s": sum(times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--proxies", type=int, default=2000)
    args = parser.parse_args()
    results = {
        variant: run(args.services, args.proxies, variant == "failover")
        for variant in ("default", "failover")
    }
    columns = ["clusters", "locality_clusters", "distinct_answers", "first_per_locality_s",
               "others_ms_per_proxy", "all_s"]  # fmt: skip
    print(report.table(["variant", *columns],
                       [[v, *(r[c] for c in columns)] for v, r in results.items()]))  # fmt: skip
    params = {"services": args.services, "proxies": args.proxies}
    print("wrote", report.write_result("locality_eds", {"params": params, **results}))


if __name__ == "__main__":
    main()
