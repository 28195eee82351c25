"""The broker's entry point: `python -m broker.main --ca-root ... --ca-token-file ...
--credentials ...` (or `bazel run //broker -- ...`).

Logs one `broker ready: ...` line once serving; SIGTERM or SIGINT stops it cleanly (exit 0),
leaving background operations IN_PROGRESS in their records for the next start to finish.
An unusable credentials file or a taken port: one error line, exit 1.
"""

from __future__ import annotations

import asyncio
import logging
import pathlib
import sys


def _put_repo_root_on_path() -> None:
    # Run as a script (Bazel's py_binary), Python puts broker/ first on sys.path, where
    # broker/osb could shadow nothing but broker.py-style names could; imports are rooted at
    # the repository.
    here = pathlib.Path(__file__).absolute().parent
    script_dirs = {here, here.resolve()}
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").absolute() not in script_dirs]
    root = str(here.parent)
    if root not in sys.path:
        sys.path.insert(0, root)


async def _serve(argv: list[str] | None) -> int:
    from broker.options import parse_args
    from broker.server import BrokerServer
    from pkg.aio.signals import serve_until_signalled

    options, log_level = parse_args(argv)
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        await serve_until_signalled(BrokerServer(options).run())
    except (OSError, ValueError) as error:
        logging.getLogger("broker").error("broker cannot start: %s", error)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_serve(argv))


if __name__ == "__main__":
    _put_repo_root_on_path()
    sys.exit(main())
