"""istioctl's start-up: wall time of whole commands, run as a user runs them, many times.

Each command is run as its own process (`python -m istioctl.main ...`), `--runs` times after
two warm-up runs (which also leave the bytecode cache written, as on a user's machine), and
the minimum, median and p90 wall times are printed. `get` reads from a real config store
(a process started here, holding Bookinfo's routing samples); `version` asks for the client
version only. For scale: the interpreter alone (`python -c pass`) and kubectl, where it is
installed, for the same kind of work.

`--root` measures another source tree (for a before/after comparison, a checkout of an
older commit with its generated protos), with the same interpreter.
"""

from __future__ import annotations

import argparse
import os
import pathlib
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


def run_once(argv: list[str], env: dict[str, str], cwd: pathlib.Path) -> tuple[float, int]:
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60
    )
    return time.perf_counter() - started, done.returncode


def measure(
    argv: list[str], env: dict[str, str], cwd: pathlib.Path, runs: int
) -> dict[str, Any] | None:
    """Milliseconds over `runs` runs, or None when the command fails (absent in that tree)."""
    for _ in range(2):
        _, code = run_once(argv, env, cwd)
        if code != 0:
            return None
    samples = []
    for _ in range(runs):
        seconds, code = run_once(argv, env, cwd)
        if code != 0:
            return None
        samples.append(seconds * 1e3)
    return {
        "min_ms": round(min(samples), 1),
        "p50_ms": round(percentile(samples, 50), 1),
        "p90_ms": round(percentile(samples, 90), 1),
        "runs": runs,
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
        "--root", type=pathlib.Path, default=ROOT, help="the source tree whose istioctl to run"
    )
    parser.add_argument("--label", default="", help="a name for this tree in the result file")
    args = parser.parse_args(argv)
    root = args.root.absolute()

    # The user's case: bytecode cached. (Some shells here export PYTHONDONTWRITEBYTECODE.)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(root)
    env.pop("ISTIO_CONFIG_STORE", None)
    work = pathlib.Path(tempfile.mkdtemp(prefix="istioctl-startup-"))
    try:
        with StoreProcess(work / "store.db") as store:
            istioctl = [sys.executable, "-m", "istioctl.main", "--config-store", store.url]
            subprocess.run(
                [*istioctl, "apply", "-f", str(SAMPLES / "destination-rule-all.yaml"),
                 "-f", str(SAMPLES / "virtual-service-all-v1.yaml")],
                env=env, cwd=root, check=True, capture_output=True, timeout=60,
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
            figures = {name: measure(cmd, env, root, args.runs) for name, cmd in commands.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        [name, *(f[k] for k in ("min_ms", "p50_ms", "p90_ms"))] if f else [name, "-", "-", "-"]
        for name, f in figures.items()
    ]
    print(f"istioctl start-up, {root} ({args.runs} runs each; '-': the command failed there)")
    print(report.table(["command", "min ms", "p50 ms", "p90 ms"], rows))
    name = "istioctl_startup" + (f"_{args.label}" if args.label else "")
    path = report.write_result(name, {"root": str(root), "label": args.label, "commands": figures})
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
