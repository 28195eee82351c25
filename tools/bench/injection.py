"""Sidecar injection: how long a pod takes, in-process and through Pilot's webhook.

In-process (pkg/inject, the install's injector ConfigMap: manifests/'s template and
values.yaml, as Istio's own BenchmarkInjection does with Istio's):
injecting one pod, and one pod with 2,000 env vars (Istio's case). Then Pilot's /inject over
TLS (an in-process WebhookServer with a certificate from a real CA, the namespace's labels
from a real config store, as Pilot reads them): AdmissionReview round trips of one pod, one
at a time over one keep-alive connection. Prints a table and writes
tools/bench/results/injection.json.

    PYTHONPATH=. .venv/bin/python tools/bench/injection.py [--pods 300] [--reviews 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import sys
import tempfile
import time
from typing import Any

import aiohttp
import yaml

from manifests import generate
from pilot.configstore.testing import StoreThread
from pilot.webhooks.server import WebhookOptions, WebhookServer
from pilot.webhooks.tlscert import CertOptions
from pkg.config import mesh as meshconfig
from pkg.inject.config import Settings, parse_config, parse_values
from pkg.inject.inject import inject_pod
from security.ca.testing import running_ca
from tools.bench import report
from tools.bench.stats import Summary

ROOT = pathlib.Path(__file__).absolute().parents[2]
TESTDATA = ROOT / "pkg/inject/testdata"
ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod"


def _configmap_data() -> dict[str, str]:
    """The injector ConfigMap's keys (`config`, `values`) as `istioctl install` writes them."""
    values = generate.default_values()
    return generate.injector_configmap(values, values["global"]["istioNamespace"])["data"]


def _pod(env_count: int = 0) -> dict[str, Any]:
    deployment = yaml.safe_load((TESTDATA / "deployment.yaml").read_text())
    template = deployment["spec"]["template"]
    container = template["spec"]["containers"][0]
    container["env"] = [{"name": f"something-{i}", "value": "blah"} for i in range(env_count)]
    labels = {**template["metadata"]["labels"], "sidecar.istio.io/inject": "true"}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "ratings", "namespace": "default", "labels": labels}, "spec": template["spec"]}  # fmt: skip


def in_process(pods: int) -> dict[str, Summary]:
    data = _configmap_data()
    settings = Settings(config=parse_config(data["config"]), values=parse_values(data["values"]),
                        mesh=meshconfig.default_mesh_config())  # fmt: skip
    out = {}
    for name, pod, count in (
        ("inject one pod", _pod(), pods),
        ("inject a pod with 2000 env vars", _pod(2000), max(pods // 10, 10)),
    ):
        inject_pod(pod, settings)  # warm up (parsing, first-use imports)
        samples = []
        for _ in range(count):
            started = time.perf_counter()
            inject_pod(pod, settings)
            samples.append(time.perf_counter() - started)
        out[name] = Summary.of_seconds(samples)
    return out


async def through_webhook(reviews: int) -> Summary:
    with tempfile.TemporaryDirectory() as tmp, StoreThread(pathlib.Path(tmp) / "store.db") as store:
        folder = pathlib.Path(tmp)
        async with running_ca(folder / "ca", grants={"bench": [ISTIOD]}) as ca:
            (folder / "root.pem").write_bytes(ca.bundle.root_pem())
            (folder / "token").write_text("bench")
            inject = folder / "inject"
            inject.mkdir()
            for key, text in _configmap_data().items():
                (inject / key).write_text(text)
            server = WebhookServer(WebhookOptions(
                address="127.0.0.1:0", config_store=store.url,
                cert=CertOptions(ca_address=ca.address, ca_root=folder / "root.pem", token_file=folder / "token"),
                inject_config_dir=inject))  # fmt: skip
            task = asyncio.create_task(server.run())
            try:
                await asyncio.wait_for(server.ready.wait(), 20)
                import ssl

                context = ssl.create_default_context(cafile=str(folder / "root.pem"))
                context.check_hostname = False
                body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "request": {"uid": "u", "namespace": "default", "operation": "CREATE",
                                               "kind": {"group": "", "version": "v1", "kind": "Pod"}, "object": _pod()}})  # fmt: skip
                samples = []
                async with aiohttp.ClientSession() as session:
                    for i in range(reviews + 5):
                        started = time.perf_counter()
                        async with session.post(f"https://{server.address}/inject", data=body, ssl=context,
                                                headers={"Content-Type": "application/json"}) as answer:  # fmt: skip
                            review = await answer.json()
                        assert review["response"]["patchType"] == "JSONPatch"
                        if i >= 5:  # the first ones warm the connection and the caches
                            samples.append(time.perf_counter() - started)
                return Summary.of_seconds(samples)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=300)
    parser.add_argument("--reviews", type=int, default=300)
    args = parser.parse_args()
    results = in_process(args.pods)
    results["webhook /inject round trip (TLS)"] = asyncio.run(through_webhook(args.reviews))
    print(report.table(["what", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"],
                       [[k, s.count, s.p50, s.p90, s.p99, s.max] for k, s in results.items()]))  # fmt: skip
    path = report.write_result("injection", {k: s.to_json() for k, s in results.items()})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
