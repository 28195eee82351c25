"""Pilot's xDS metrics, as Prometheus scrapes them, after real streams and pushes."""

from __future__ import annotations

import asyncio
import re

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from prometheus_client.parser import text_string_to_metric_families

from pilot.xds.server import XdsServer
from pilot.xds.testing import node, run_async
from pkg.monitoring import render
from pkg.xds import resources as res
from pkg.xds.resources import Resource
from pkg.xds.testing import XdsDriver


def samples(xds: XdsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name as written, labels); the parser calls counters `<name>_total`."""
    text = render(xds.metrics.registry).decode()
    assert not re.search(r"_total[{ ]", text)
    return {
        (s.name.removesuffix("_total"), tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@run_async
async def test_pushes_rejects_connections_and_convergence_are_counted():
    clusters = [Resource("a", cluster_pb2.Cluster(name="a"))]

    def generate(_proxy, type_url, _names):
        if type_url == res.CLUSTER:
            return list(clusters)
        return [Resource("l", listener_pb2.Listener(name="l"))]

    xds = XdsServer(generate, debounce_after=0)
    async with asyncio.TaskGroup() as tasks, XdsDriver.memory(xds, node()) as ads:
        ready = asyncio.Event()
        pusher = tasks.create_task(xds.run(started=ready))
        await ready.wait()
        response = await ads.request_response_ack(res.CLUSTER)
        await ads.request_response_ack(res.LISTENER)
        assert samples(xds)[("pilot_xds", ())] == 1.0

        clusters[:] = [Resource("a", cluster_pb2.Cluster(name="a", alt_stat_name="new"))]
        await xds.push("config: cluster a")
        response = await ads.expect_response(res.CLUSTER)
        await ads.nack(response, "cluster a: rejected for the test")
        await asyncio.sleep(0.05)  # the NACK is read by the server's reader task
        pusher.cancel()

    got = samples(xds)
    assert got[("pilot_xds_pushes", (("type", "cds"),))] == 2.0
    assert got[("pilot_xds_pushes", (("type", "lds"),))] == 1.0
    assert got[("pilot_total_xds_rejects", (("type", "cds"),))] == 1.0
    assert got[("pilot_push_triggers", (("type", "config"),))] == 1.0
    assert got[("pilot_xds_push_time_count", (("type", "cds"),))] == 2.0
    assert got[("pilot_proxy_convergence_time_count", ())] == 1.0
    assert got[("pilot_proxy_convergence_time_bucket", (("le", "30.0"),))] == 1.0
    assert got[("pilot_xds_config_size_bytes_count", (("type", "cds"),))] == 2.0
    assert got[("pilot_xds", ())] == 0.0  # the stream is gone
