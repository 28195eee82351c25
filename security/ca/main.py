"""istio_ca's entry point: `python -m security.ca.main --ca-dir DIR --tokens FILE [...]`.

Logs one `istio-ca ready: ...` line once serving; SIGTERM or SIGINT stops it cleanly (exit 0).
Unusable key material or token file: one error line, exit 1.
"""

from __future__ import annotations

import sys

from pkg.aio import program


def main(argv: list[str] | None = None) -> int:
    from security.ca.bundle import CaConfigError
    from security.ca.options import parse_args
    from security.ca.server import CaServer
    from security.ca.tokens import TokenFileError

    options, log_level = parse_args(argv)
    return program.run(
        lambda stop: program.until(stop, CaServer(options).run()),
        name="istio-ca",
        level=log_level,
        fatal=(CaConfigError, TokenFileError, OSError),
    )


if __name__ == "__main__":
    sys.exit(main())
