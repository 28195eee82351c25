"""What a Python service pays per Check (warm cache) and per Report through the binding.

    PYTHONPATH=. .venv/bin/python mixerclient/bench/python_bench.py [--seconds 1]
    bazel run //mixerclient/bench:python_bench

The transport answers at once with the deny-label sample's answer, so only the client's own
work is measured: converting the attribute dict, the cache lookup or the batching, and the
asyncio await. No timed assertions: it prints its figures.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import pathlib
import sys
import time

from api.mixer.v1 import check_pb2
from mixerclient.python.client import ClientOptions, MixerClient

ATTRIBUTES = {
    "source.uid": "kubernetes://reviews-v3-7d9c8b7f4-x2lk.default",
    "source.namespace": "default",
    "source.principal": "cluster.local/ns/default/sa/bookinfo-reviews",
    "source.labels": {"app": "reviews", "version": "v3", "pod-template-hash": "7d9c8b7f4"},
    "destination.service.host": "ratings.default.svc.cluster.local",
    "destination.labels": {"app": "ratings", "version": "v1"},
    "destination.port": 9080,
    "request.path": "/ratings/0",
    "request.method": "GET",
    "request.headers": {
        ":authority": "ratings:9080",
        ":path": "/ratings/0",
        "x-request-id": "a3f1",
    },
    "request.time": datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC),
    "context.reporter.kind": "inbound",
    "connection.mtls": True,
}


def answer() -> bytes:
    response = check_pb2.CheckResponse()
    p = response.precondition
    p.valid_use_count = 1 << 30
    p.valid_duration.seconds = 600
    refs = p.referenced_attributes
    refs.words.extend(["version", "app"])
    refs.attribute_matches.add(name=5, condition=2, map_key=-1)
    refs.attribute_matches.add(name=156, condition=2, map_key=-2)
    return response.SerializeToString()


class InstantMixer:
    def __init__(self) -> None:
        self.response = answer()

    def check(self, request: bytes, completion) -> None:
        completion(0, "", self.response)

    def report(self, request: bytes, completion) -> None:
        completion(0, "", b"")


# CPU time of this thread: on a shared machine, wall time would count other processes' turns.
def per_op(seconds: float, op) -> float:
    n, start = 0, time.thread_time()
    while (elapsed := time.thread_time() - start) < seconds:
        for _ in range(500):
            op()
        n += 500
    return elapsed / n * 1e9


async def per_op_async(seconds: float, op) -> float:
    n, start = 0, time.thread_time()
    while (elapsed := time.thread_time() - start) < seconds:
        for _ in range(500):
            await op()
        n += 500
    return elapsed / n * 1e9


async def main(seconds: float) -> dict[str, float]:
    client = MixerClient(InstantMixer(), options=ClientOptions(deduplication_id_base="bench-"))
    await client.check(ATTRIBUTES)
    figures = {
        "check, warm cache (await MixerClient.check)": await per_op_async(
            seconds, lambda: client.check(ATTRIBUTES)
        ),
        "report (MixerClient.report)": per_op(seconds, lambda: client.report(ATTRIBUTES)),
    }
    client.close()
    assert client.stats()["total_remote_check_calls"] == 1
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="per case")
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args()
    results = asyncio.run(main(args.seconds))
    print(f"mixerclient through the Python binding ({len(ATTRIBUTES)} attributes)")
    for name, ns in results.items():
        print(f"  {name:48} {ns / 1000:8.2f} CPU us/op")
    if args.json:
        args.json.write_text(
            json.dumps({"benchmark": "mixerclient_python", "ns_per_op": results}, indent=2)
        )
    sys.exit(0)
