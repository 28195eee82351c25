"""Sidecar injection against Istio's own expectations, read from a checkout of istio/istio.

Istio's kube-inject test data is never copied into this repository (it is Istio's,
Apache-licensed, and changes with every release): point this tool at a checkout instead.
It reads, under `--istio`:

- `pkg/kube/inject/testdata/inject/`: the inputs (`NAME.yaml`) and goldens
  (`NAME.yaml.injected`, `NAME-old-version.yaml.injected`, ...) of Istio's inject_test.go;
- `manifests/charts/istio-control/istio-discovery/files/injection-template.yaml`: the
  `sidecar` template, as the `istio-sidecar-injector` ConfigMap's `config` carries it;
- `manifests/charts/istio-control/istio-discovery/values.yaml`: the chart's defaults, from
  which the ConfigMap's `values` are built as its template builds them (`global`,
  `sidecarInjectorWebhook`, `revision`, `pilot` = `cni` and `env`, `gateways` =
  `securityContext` and `seccompProfile`); `--values FILE` uses a rendered `values` instead
  (e.g. `kubectl get cm istio-sidecar-injector -n istio-system -o jsonpath='{.data.values}'`).

Each case runs our injector (pkg/inject's kube-inject) over an input with the settings
Istio's test gives it (CASES: its --set flags as values, its mesh changes, native sidecars
or not) and compares the result with the golden by structure (compare.py: what a
Go struct round trip spells differently is put aside). Inputs with a golden that the table
does not name run with the default settings, as Istio's test runs those it gives no
settings (many of them do have settings in Istio's test, so they are counted apart). Refusal
cases expect an error naming the annotation. One line per case, then the totals; exit
status 1 when a listed case fails, 2 when the checkout cannot be read.

    PYTHONPATH=. .venv/bin/python tools/conformance/inject.py --istio /path/to/istio [-v] [-k NAME]...
    bazel run //tools/conformance:inject -- --istio /path/to/istio
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import pathlib
import sys
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

if __name__ == "__main__" and not __package__:
    sys.path[0] = str(pathlib.Path(__file__).absolute().parents[2])

import yaml

from pkg.config import mesh as meshconfig
from pkg.inject import kubeinject
from pkg.inject.config import InjectionConfig, Settings, parse_config, parse_values
from tools.conformance import compare

CASES_DIR = "pkg/kube/inject/testdata/inject"
CHART = "manifests/charts/istio-control/istio-discovery"
TEMPLATE = f"{CHART}/files/injection-template.yaml"
CHART_VALUES = f"{CHART}/values.yaml"


@dataclasses.dataclass(frozen=True)
class Case:
    """One of Istio's inject_test.go cases: an input, what to expect, and its settings."""

    source: str  # the input file's name
    want: str  # the golden's file name, or the annotation a refusal names
    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # dotted paths
    mesh: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # over the default mesh
    native: bool = True  # Istio's test clusters run Kubernetes 1.33+: native sidecars
    refused: bool = False  # want names the annotation the error must mention
    listed: bool = True  # False: found in the checkout, run with the defaults


# Inputs Istio injects with its defaults (NAME.yaml -> NAME.yaml.injected).
_DEFAULT = [
    "auth.non-default-service-account", "auth", "cronjob", "daemonset", "enable-core-dump",
    "explicit-security-context", "frontend", "hello-host-network", "hello-host-network-with-ns",
    "hello-ignore", "hello-image-pull-secret", "hello-mtls-not-ready", "hello-multi",
    "hello-namespace", "hello-probes", "hello-probes-noProxyHoldApplication-ProxyConfig",
    "hello-probes-proxyHoldApplication-ProxyConfig", "hello-probes-with-flag-set-in-annotation",
    "hello-probes-with-flag-unset-in-annotation", "hello-readiness", "hello-service",
    "hello-tracing-disabled", "hello", "https-probes", "init-no-intercept-no-native-sidecar",
    "job", "kubevirtInterfaces_list", "list-frontend", "list", "multi-container", "multi-init",
    "named_port", "native-sidecar-opt-in", "native-sidecar-opt-out", "native-sidecar",
    "one_container", "only-proxy-container", "pod", "prometheus-scrape", "prometheus-scrape2",
    "proxy-override-args", "proxy-override-runas", "proxy-override", "ready_live", "ready_only",
    "replicaset", "replicationcontroller", "reroute-virtual-interfaces_list",
    "resource_annotations", "startup_live", "startup_only", "startup_ready_live", "statefulset",
    "status_annotations", "status_annotations_zeroport", "tcp-probes",
    "traffic-annotations-empty-includes", "traffic-annotations-wildcards",
    "traffic-params-empty-includes", "truncate-canonical-name-custom-controller-pod",
    "truncate-canonical-name-pod", "two_container", "user-volume",
]  # fmt: skip
# Inputs Istio also injects for clusters too old for native sidecars (NAME-old-version...).
_OLD_VERSION = ["cronjob", "daemonset", "hello", "job", "native-sidecar", "pod", "replicaset",
                "statefulset"]  # fmt: skip
_STATUS = {"global.proxy.statusPort": 123, "global.proxy.readinessInitialDelaySeconds": 100,
           "global.proxy.readinessPeriodSeconds": 200, "global.proxy.readinessFailureThreshold": 300}  # fmt: skip
_TPROXY = {"defaultConfig": {"interceptionMode": "TPROXY"}}
_HOLD = {"global.proxy.holdApplicationUntilProxyStarts": True}
# Istio's cases with settings of their own: (input, golden, its --set flags, its mesh changes).
_CUSTOM: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("hello", "hello.yaml.proxyImageName.injected", {"global.proxy.image": "proxyTest"}, {}),
    ("hello", "hello.yaml.proxyInitImageName.injected", {"global.proxy_init.image": "proxyInitTest"}, {}),
    ("hello", "hello-always.yaml.injected", {"global.imagePullPolicy": "Always"}, {}),
    ("hello", "hello-never.yaml.injected", {"global.imagePullPolicy": "Never"}, {}),
    ("hello", "hello-mount-mtls-certs.yaml.injected", {"global.mountMtlsCerts": True}, {}),
    ("hello", "hello.proxyHoldsApplication.yaml.injected", _HOLD, {}),
    ("hello-probes", "hello-probes.proxyHoldsApplication.yaml.injected", _HOLD, {}),
    ("merge-probers", "merge-probers.yaml.injected", _HOLD, {}),
    ("hello", "hello.yaml.cni.injected", {"pilot.cni.enabled": True, "pilot.cni.provider": "default", "global.network": "network1"}, {}),
    ("proxy-override-runas", "proxy-override-runas.yaml.cni.injected", {"pilot.cni.enabled": True}, {}),
    ("traffic-params", "traffic-params.yaml.injected", {
        "global.proxy.includeIPRanges": "127.0.0.1/24,10.96.0.1/24",
        "global.proxy.excludeIPRanges": "10.96.0.2/24,10.96.0.3/24",
        "global.proxy.excludeInboundPorts": "4,5,6", "global.proxy.statusPort": 0}, {}),
    ("status_params", "status_params.yaml.injected", _STATUS, {}),
    ("kubevirtInterfaces", "kubevirtInterfaces.yaml.injected", _STATUS, {}),
    ("reroute-virtual-interfaces", "reroute-virtual-interfaces.yaml.injected", _STATUS, {}),
    ("hello", "hello-tproxy.yaml.injected", {}, _TPROXY),
    ("proxy-override-runas", "proxy-override-runas.yaml.tproxy.injected", {}, _TPROXY),
    ("format-duration", "format-duration.yaml.injected", {}, {"defaultConfig": {"drainDuration": "23s"}}),
    ("hello-probes-localhost", "hello-probes-localhost.yaml.injected", {}, {"inboundTrafficPolicy": {"mode": "LOCALHOST"}}),
    ("traffic-annotations", "traffic-annotations.yaml.injected", {},
     {"defaultConfig": {"proxyMetadata": {"ISTIO_META_TLS_CLIENT_KEY": "/etc/identity/client/keys/client-key.pem"}}}),
]  # fmt: skip
# Inputs Istio refuses: traffic-annotations-bad-NAME.yaml, the error names NAME.
_BAD = ["includeipranges", "excludeipranges", "includeinboundports", "excludeinboundports",
        "excludeoutboundports"]  # fmt: skip

CASES: tuple[Case, ...] = (
    *(Case(f"{n}.yaml", f"{n}.yaml.injected") for n in _DEFAULT),
    *(Case(f"{n}.yaml", f"{n}-old-version.yaml.injected", native=False) for n in _OLD_VERSION),
    *(Case(f"{s}.yaml", g, v, m) for s, g, v, m in _CUSTOM),
    *(Case(f"traffic-annotations-bad-{n}.yaml", n, refused=True) for n in _BAD),
)


def discovered(cases_dir: pathlib.Path, listed: Iterable[Case]) -> list[Case]:
    """Inputs with a golden of their own name that no listed case uses (Istio's own rule:
    those run with the defaults). `.iop.yaml` files are install settings, not inputs."""
    used = {c.want for c in listed if not c.refused}
    out = []
    for path in sorted(cases_dir.glob("*.yaml")):
        golden = path.name + ".injected"
        if path.name.endswith(".iop.yaml") or golden in used:
            continue
        if (cases_dir / golden).is_file():
            out.append(Case(path.name, golden, listed=False))
    return out


def chart_values(istio: pathlib.Path) -> dict[str, Any]:
    """The `values` key of the injector ConfigMap, as the chart's template picks it from its
    defaults (istiod-injector-configmap.yaml)."""
    data = yaml.safe_load((istio / CHART_VALUES).read_text()) or {}
    # Istio's chart keeps its defaults under one key (a Helm workaround its comment explains).
    defaults = data.get("_internal_defaults_do_not_set", data)
    out = {k: copy.deepcopy(defaults[k]) for k in ("global", "sidecarInjectorWebhook", "revision")
           if k in defaults}  # fmt: skip
    out["pilot"] = {k: copy.deepcopy(defaults[k]) for k in ("cni", "env") if k in defaults}
    gateways = defaults.get("gateways") or {}
    out["gateways"] = {k: copy.deepcopy(gateways[k]) for k in ("securityContext", "seccompProfile")
                       if k in gateways}  # fmt: skip
    return out


def sidecar_config(template: str) -> InjectionConfig:
    """The ConfigMap's `config` with the one template, as Istio's chart writes it."""
    return parse_config(
        "policy: enabled\ntemplates:\n  sidecar: |\n" + textwrap.indent(template, "    "),
        source=TEMPLATE,
    )


def with_values(values: Mapping[str, Any], dotted: Mapping[str, Any]) -> dict[str, Any]:
    """`values` with each `a.b.c: value` set, as Helm's --set sets it."""
    out = copy.deepcopy(dict(values))
    for path, value in dotted.items():
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


@dataclasses.dataclass(frozen=True)
class Result:
    case: Case
    problems: tuple[str, ...]  # empty: the case passes

    @property
    def passed(self) -> bool:
        return not self.problems


def run_case(
    case: Case, cases_dir: pathlib.Path, config: InjectionConfig, values: Mapping[str, Any]
) -> Result:
    source = cases_dir / case.source
    if not source.is_file():
        return Result(case, (f"missing input {case.source}",))
    settings = Settings(
        config=config,
        values=with_values(values, case.values),
        mesh=meshconfig.apply_mesh_config(json.dumps(dict(case.mesh))),
        native_sidecar=case.native,
    )
    try:
        got = kubeinject.into_resource_text(source.read_text(), settings)
    except kubeinject.KubeInjectError as error:
        message = str(error)
        if case.refused and case.want in message.lower():
            return Result(case, ())
        return Result(case, (f"refused: {message}",))
    if case.refused:
        return Result(case, (f"injected; want an error naming {case.want}",))
    golden = cases_dir / case.want
    if not golden.is_file():
        return Result(case, (f"missing golden {case.want}",))
    return Result(case, tuple(compare.diff_streams(got, golden.read_text())))


def run(istio: pathlib.Path, values_file: pathlib.Path | None = None,
        only: Sequence[str] = ()) -> list[Result]:  # fmt: skip
    """Every case (or those whose file names contain one of `only`), in the table's order."""
    cases_dir = istio / CASES_DIR
    if not cases_dir.is_dir():
        raise FileNotFoundError(
            f"{cases_dir}: not a directory (is {istio} a checkout of istio/istio?)"
        )
    config = sidecar_config((istio / TEMPLATE).read_text())
    values = (
        parse_values(values_file.read_text(), source=str(values_file))
        if values_file
        else chart_values(istio)
    )
    cases = [*CASES, *discovered(cases_dir, CASES)]
    chosen = [c for c in cases if not only or any(o in c.want or o in c.source for o in only)]
    return [run_case(c, cases_dir, config, values) for c in chosen]


def _label(case: Case) -> str:
    if case.refused:
        return f"{case.source} (refused: {case.want})"
    return case.want + ("" if case.listed else " (not in the table: default settings)")


def report(results: Sequence[Result], verbose: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout  # looked up at call time: tests capture it
    for result in results:
        if result.passed:
            print(f"PASS {_label(result.case)}", file=out)
            continue
        shown = result.problems if verbose else result.problems[:1]
        more = len(result.problems) - len(shown)
        print(f"FAIL {_label(result.case)}: {shown[0]}" + (f" (+{more} more)" if more else ""),
              file=out)  # fmt: skip
        for line in shown[1:]:
            print(f"     {line}", file=out)
    listed = [r for r in results if r.case.listed]
    others = [r for r in results if not r.case.listed]
    print(f"{sum(r.passed for r in listed)}/{len(listed)} listed cases pass", file=out)
    if others:
        # Istio gives most of these settings of their own (an .iop.yaml, templates, a cluster
        # setup) that the table does not model yet: counted apart, not as failures.
        print(f"{sum(r.passed for r in others)}/{len(others)} cases not in the table pass "
              "with the default settings", file=out)  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--istio", type=pathlib.Path, required=True,
                        help="a checkout of istio/istio")  # fmt: skip
    parser.add_argument("--values", type=pathlib.Path,
                        help="the injector ConfigMap's values (JSON or YAML); default: from the chart")  # fmt: skip
    parser.add_argument("-k", dest="only", action="append", default=[],
                        help="only cases whose file names contain this (repeatable)")  # fmt: skip
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="every difference, not the first"
    )
    args = parser.parse_args(argv)
    try:
        results = run(args.istio, args.values, args.only)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(results, args.verbose)
    return 0 if all(r.passed for r in results if r.case.listed) else 1


if __name__ == "__main__":
    sys.exit(main())
