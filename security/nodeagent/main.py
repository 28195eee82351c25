"""The node agent's entry point: `python -m security.nodeagent.main --ca-root ... [flags]`.

Runs until SIGTERM or SIGINT, then ends the SDS streams, removes the socket and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import signal
import sys


def _put_repo_root_on_path() -> None:
    # Run as a script (Bazel's py_binary stub runs this file), Python puts security/nodeagent
    # first on sys.path, where a module (keys, options, ...) could shadow a top-level one.
    # Imports here are rooted at the repository, as under pytest: use the root.
    here = pathlib.Path(__file__).absolute().parent
    script_dirs = {here, here.resolve()}
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").absolute() not in script_dirs]
    root = str(here.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


async def _serve(argv: list[str] | None) -> None:
    from security.nodeagent.agent import NodeAgent
    from security.nodeagent.options import parse_args

    options = parse_args(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await NodeAgent(options=options).run(stop)


def main(argv: list[str] | None = None) -> int:
    _put_repo_root_on_path()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    log = logging.getLogger("security.nodeagent")
    try:
        asyncio.run(_serve(argv))
    except (OSError, ValueError) as error:
        log.error("node agent failed: %s", error)
        return 1
    except ExceptionGroup as group:
        for error in group.exceptions:
            log.error("node agent failed: %s", error, exc_info=error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
