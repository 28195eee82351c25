"""Test support for Mixer in the request path of a running mesh: config, metrics, stats.

Mixer's kinds (rules, handlers, instances) reach mixs, not Pilot, so applying them waits
for mixs' config snapshot instead of a push; QuotaSpecs and their bindings are Pilot's and
wait for the push as well.
"""

from __future__ import annotations

import json
import pathlib
import time
import urllib.error
import urllib.request
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

from pkg.config import loader
from tests.e2e.meshtest import ROOT, MeshUnderTest

POLICY = ROOT / "samples/bookinfo/policy"


def _get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.read().decode()


def mixer_status(mesh: MeshUnderTest) -> dict:
    return json.loads(_get(f"{mesh.topology.mixer_monitoring_url}/debug/status"))


def _rules_of(paths: tuple[pathlib.Path, ...]) -> tuple[set[str], bool]:
    rules, pilot = set(), False
    for path in paths:
        for resource in loader.load_file(path):
            if resource.schema.kind == "rule":
                rules.add(f"{resource.metadata.namespace}/{resource.metadata.name}")
            pilot = pilot or "pilot" in resource.schema.sets
    return rules, pilot


def apply(mesh: MeshUnderTest, *samples: str | pathlib.Path, timeout: float = 15.0) -> None:
    """istioctl apply of policy samples (names under samples/bookinfo/policy, or paths), then
    until mixs serves a snapshot with their rules (and every proxy has Pilot's push)."""
    paths = tuple(_path(s) for s in samples)
    rules, pilot = _rules_of(paths)
    pushes = mesh.pushes()
    mesh.istioctl("apply", *(a for p in paths for a in ("-f", str(p))))
    _wait_rules(mesh, lambda present: rules <= present, timeout, f"rules {sorted(rules)} in mixs")
    if pilot:
        mesh.wait_synced(after=pushes)


def delete(mesh: MeshUnderTest, *samples: str | pathlib.Path, timeout: float = 15.0) -> None:
    paths = tuple(_path(s) for s in samples)
    rules, pilot = _rules_of(paths)
    pushes = mesh.pushes()
    mesh.istioctl("delete", *(a for p in paths for a in ("-f", str(p))), check=False)
    _wait_rules(mesh, lambda present: not (rules & present), timeout, f"rules {sorted(rules)} gone")
    if pilot:
        mesh.wait_synced(after=pushes)


def _wait_rules(mesh: MeshUnderTest, done, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = mixer_status(mesh)
        if done(set(status["rules"])):
            assert not status["config_errors"], status["config_errors"]
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not seen within {timeout}s: {mixer_status(mesh)}")


def _path(sample: str | pathlib.Path) -> pathlib.Path:
    return sample if isinstance(sample, pathlib.Path) else POLICY / f"{sample}.yaml"


# Telemetry.


def metric(mesh: MeshUnderTest, name: str, labels: Mapping[str, str]) -> float:
    """The sum of a mixs Prometheus metric's samples whose labels include `labels`."""
    total = 0.0
    for family in text_string_to_metric_families(_get(mesh.topology.mixer_metrics_url)):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def settled_metric(mesh: MeshUnderTest, name: str, labels: Mapping[str, str]) -> float:
    """The metric once the reports of earlier traffic are in: the same in two reads 1.5 s
    apart (a batch waits up to a second, plus a tick of the filter)."""
    value = metric(mesh, name, labels)
    for _ in range(20):
        time.sleep(1.5)
        again = metric(mesh, name, labels)
        if again == value:
            return value
        value = again
    raise AssertionError(f"{name}{dict(labels)} keeps changing")


def wait_metric(
    mesh: MeshUnderTest, name: str, labels: Mapping[str, str], value: float, timeout: float = 10.0
) -> float:
    """Until the metric reaches `value` (reports are batched: up to a second and a tick)."""
    deadline = time.monotonic() + timeout
    current = metric(mesh, name, labels)
    while current < value and time.monotonic() < deadline:
        time.sleep(0.1)
        current = metric(mesh, name, labels)
    return current


def envoy_stats(mesh: MeshUnderTest, pod: str, prefix: str = "wasmcustom.") -> dict[str, int]:
    """A pod's Envoy statistics (the filter's are `wasmcustom.http_mixer_filter.*`)."""
    if pod == "istio-ingressgateway":
        address = mesh.topology.gateway_address
    else:
        address = mesh.topology.pod_address(mesh.topology.pod(pod))
    text = _get(f"http://{address}:15000/stats?filter={prefix}")
    stats = {}
    for line in text.splitlines():
        name, _, value = line.partition(": ")
        if value.strip().lstrip("-").isdigit():
            stats[name] = int(value)
    return stats


def access_log(mesh: MeshUnderTest) -> list[dict]:
    """mixs' access log entries (the stdio adapter writes JSON lines to its output)."""
    entries = []
    for line in mesh.log("mixs").splitlines():
        start = line.find("{")
        if start < 0 or '"accesslog.' not in line:
            continue
        try:
            entries.append(json.loads(line[start:]))
        except ValueError:
            continue
    return entries


def status_of(url: str, headers: Mapping[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")
