"""istio_ca's entry point: `python -m security.ca.main --ca-dir DIR --tokens FILE [...]`.

Logs one `istio-ca ready: ...` line once serving; SIGTERM or SIGINT stops it cleanly (exit 0).
Unusable key material or token file: one error line, exit 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import signal
import sys


def _put_repo_root_on_path() -> None:
    # Run as a script (by Bazel's py_binary stub), Python puts security/ca first on sys.path,
    # where a module could shadow a top-level one. Imports are rooted at the repository.
    here = pathlib.Path(__file__).absolute().parent
    script_dirs = {here, here.resolve()}
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").absolute() not in script_dirs]
    root = str(here.parents[1])
    if root not in sys.path:
        sys.path.insert(0, root)


async def _serve(argv: list[str] | None) -> int:
    from security.ca.bundle import CaConfigError
    from security.ca.options import parse_args
    from security.ca.server import CaServer
    from security.ca.tokens import TokenFileError

    options, log_level = parse_args(argv)
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    serving = asyncio.current_task()
    assert serving is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, serving.cancel)
    try:
        with contextlib.suppress(asyncio.CancelledError):
            await CaServer(options).run()
    except (CaConfigError, TokenFileError) as e:
        logging.getLogger("security.ca").error("istio-ca cannot start: %s", e)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(_serve(argv))


if __name__ == "__main__":
    _put_repo_root_on_path()
    sys.exit(main())
