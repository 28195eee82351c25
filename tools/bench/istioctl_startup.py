"""istioctl's start-up: wall time of whole commands, run as a user runs them, many times.

Each command is run as its own process (`python -m istioctl.main ...`), `--runs` times after
two warm-up runs (which also leave the bytecode cache written, as on a user's machine), and
the minimum and median wall times are printed, with the median CPU time (user + system) the
process used: on a shared machine under load the wall time grows with the queue for a core,
the CPU time much less. `get` reads from a real config store
(a process started here, holding Bookinfo's routing samples); `version` asks for the client
version only. For scale: the interpreter alone (`python -c pass`) and kubectl, where it is
installed, for the same kind of work.

`--baseline DIR` also runs the same commands from another source tree (a checkout of an
older commit with its generated protos), with the same interpreter, alternating run by run
with this tree's, so both meet the same load on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

from pilot.configstore.testing import StoreProcess
from tools.bench import report
from tools.bench.stats import percentile

ROOT = pathlib.Path(__file__).absolute().parents[2]
SAMPLES = ROOT / "samples" / "bookinfo" / "networking"


def run_once(argv: list[str], env: dict[str, str], cwd: pathlib.Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds (user + system) and exit status of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.returncode


def measure(
    argv: list[str], envs: dict[str, dict[str, str]], runs: int
) -> dict[str, dict[str, Any] | None]:
    """Per tree, milliseconds over `runs` runs (the trees taking turns), or None where the
    command fails (absent in that tree)."""
    working = {}
    for tree, env in envs.items():
        # Two warm-up runs: the bytecode cache is written, the files are in the page cache.
        codes = [run_once(argv, env, pathlib.Path(env["PYTHONPATH"]))[2] for _ in range(2)]
        if all(code == 0 for code in codes):
            working[tree] = env
    walls: dict[str, list[float]] = {tree: [] for tree in working}
    cpus: dict[str, list[float]] = {tree: [] for tree in working}
    for _ in range(runs):
        for tree, env in working.items():
            wall, cpu, code = run_once(argv, env, pathlib.Path(env["PYTHONPATH"]))
            if code == 0:
                walls[tree].append(wall * 1e3)
                cpus[tree].append(cpu * 1e3)
    return {tree: _summary(walls.get(tree, []), cpus.get(tree, [])) for tree in envs}


def _summary(walls: list[float], cpus: list[float]) -> dict[str, Any] | None:
    if not walls:
        return None
    return {
        "min_ms": round(min(walls), 1),
        "p50_ms": round(percentile(walls, 50), 1),
        "p90_ms": round(percentile(walls, 90), 1),
        "cpu_p50_ms": round(percentile(cpus, 50), 1),
        "runs": len(walls),
    }


def kubeconfig(directory: pathlib.Path, server: str) -> pathlib.Path:
    path = directory / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: bench\n"
        f"clusters:\n- name: bench\n  cluster: {{server: '{server}'}}\n"
        "contexts:\n- name: bench\n  context: {cluster: bench, user: bench}\n"
        "users:\n- name: bench\n  user: {}\n"
    )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="measured runs per command")
    parser.add_argument(
        "--baseline",
        type=pathlib.Path,
        help="another source tree to measure alongside (e.g. a checkout of the last release)",
    )
    args = parser.parse_args(argv)

    # The user's case: bytecode cached. (Some shells here export PYTHONDONTWRITEBYTECODE.)
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    for name in ("ISTIO_CONFIG_STORE", "KUBECONFIG", "ISTIO_PILOT"):
        base.pop(name, None)
    trees = {"this": ROOT}
    if args.baseline:
        trees["baseline"] = args.baseline.absolute()
    envs = {tree: {**base, "PYTHONPATH": str(root)} for tree, root in trees.items()}
    work = pathlib.Path(tempfile.mkdtemp(prefix="istioctl-startup-"))
    try:
        with StoreProcess(work / "store.db") as store:
            istioctl = [sys.executable, "-m", "istioctl.main", "--config-store", store.url]
            subprocess.run(
                [*istioctl, "apply", "-f", str(SAMPLES / "destination-rule-all.yaml"),
                 "-f", str(SAMPLES / "virtual-service-all-v1.yaml")],
                env=envs["this"], cwd=ROOT, check=True, capture_output=True, timeout=60,
            )  # fmt: skip
            commands: dict[str, list[str]] = {
                "python -c pass": [sys.executable, "-c", "pass"],
                "istioctl --help": [*istioctl, "--help"],
                "istioctl get vs": [*istioctl, "get", "vs"],
                "istioctl get dr -o yaml": [*istioctl, "get", "dr", "-o", "yaml"],
                "istioctl version --remote=false": [*istioctl, "version", "--remote=false"],
            }
            kubectl = shutil.which("kubectl")
            if kubectl:
                config = str(kubeconfig(work, store.url))
                commands["kubectl --help"] = [kubectl, "--help"]
                commands["kubectl version --client"] = [kubectl, "version", "--client"]
                commands["kubectl get --raw (vs list)"] = [
                    kubectl, "--kubeconfig", config, "get", "--raw",
                    "/apis/networking.istio.io/v1alpha3/namespaces/default/virtualservices",
                ]  # fmt: skip
            figures = {name: measure(cmd, envs, args.runs) for name, cmd in commands.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    headers = ["command"]
    for tree in trees:
        headers += [f"{tree} min ms", f"{tree} p50 ms", f"{tree} cpu p50 ms"]
    rows = []
    for name, by_tree in figures.items():
        row: list[Any] = [name]
        for tree in trees:
            found = by_tree[tree]
            row += [found[k] for k in ("min_ms", "p50_ms", "cpu_p50_ms")] if found else ["-"] * 3
        rows.append(row)
    where = ", ".join(f"{tree}: {root}" for tree, root in trees.items())
    print(f"istioctl start-up ({where}; {args.runs} runs each, '-': the command failed there)")
    print(report.table(headers, rows))
    trees_json = {tree: str(root) for tree, root in trees.items()}
    path = report.write_result("istioctl_startup", {"trees": trees_json, "commands": figures})
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
