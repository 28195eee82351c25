"""The broker's entry point: `python -m broker.main --ca-root ... --ca-token-file ...
--credentials ...` (or `bazel run //broker -- ...`).

Logs one `broker ready: ...` line once serving; SIGTERM or SIGINT stops it cleanly (exit 0),
leaving background operations IN_PROGRESS in their records for the next start to finish.
An unusable credentials file or a taken port: one error line, exit 1.
"""

from __future__ import annotations

import sys

from pkg.aio import program


def main(argv: list[str] | None = None) -> int:
    from broker.options import parse_args
    from broker.server import BrokerServer

    options, log_level = parse_args(argv)
    return program.run(
        lambda stop: program.until(stop, BrokerServer(options).run()),
        name="broker",
        level=log_level,
    )


if __name__ == "__main__":
    sys.exit(main())
