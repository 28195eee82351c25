"""The node agent's entry point: `python -m security.nodeagent.main --ca-root ... [flags]`.

Runs until SIGTERM or SIGINT, then ends the SDS streams, removes the socket and exits 0.
"""

from __future__ import annotations

import sys

from pkg.aio import program


def main(argv: list[str] | None = None) -> int:
    from security.nodeagent.agent import NodeAgent
    from security.nodeagent.options import parse_args

    options = parse_args(argv)
    return program.run(NodeAgent(options=options).run, name="node agent")


if __name__ == "__main__":
    sys.exit(main())
