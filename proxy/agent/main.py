"""pilot-agent's entry point: `main.py proxy sidecar|router --ip ... --pod ... --run-dir ...`,
or `main.py istio-iptables ...`, the capture the istio-init container installs (one image
serves both containers, as Istio's proxyv2 does).

Runs until SIGTERM or SIGINT, then leaves the mesh, drains Envoy and exits 0; a second signal
stops it at once.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import signal
import sys


def _put_repo_root_on_path() -> None:
    # Run as a script (`python proxy/agent/main.py`, or by Bazel's py_binary stub), Python puts
    # proxy/agent first on sys.path, where a module could shadow a top-level package of the
    # same name. Imports here are rooted at the repository, as under pytest: use the root.
    # (Python resolves a symlinked script's directory; Bazel's runfiles are symlinks.)
    here = pathlib.Path(__file__).absolute().parent
    script_dirs = {here, here.resolve()}
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").absolute() not in script_dirs]
    root = str(here.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


async def _serve(argv: list[str] | None) -> None:
    from proxy.agent.agent import Agent
    from proxy.agent.options import parse_args

    options = parse_args(argv)
    stop = asyncio.Event()
    serving = asyncio.current_task()
    assert serving is not None

    def on_signal() -> None:
        if stop.is_set():
            serving.cancel()  # a second signal: stop at once (Envoy killed, no drain)
        else:
            stop.set()

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)
    await Agent(options=options).run(stop)


def main(argv: list[str] | None = None) -> int:
    _put_repo_root_on_path()
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["istio-iptables"]:
        from proxy.iptables.cmd import main as istio_iptables

        return istio_iptables(args[1:])
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        asyncio.run(_serve(argv))
    except asyncio.CancelledError:
        logging.getLogger("pilot-agent").warning("stopped at once by a second signal")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
