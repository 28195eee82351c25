"""pilot-agent's entry point: `python -m proxy.agent.main proxy sidecar|router --ip ... --pod ... --run-dir ...`.

Runs until SIGTERM or SIGINT, then leaves the mesh, drains Envoy and exits 0; a second signal
stops it at once.
"""

from __future__ import annotations

import sys

from pkg.aio import program


def main(argv: list[str] | None = None) -> int:
    from proxy.agent.agent import Agent
    from proxy.agent.options import parse_args

    options = parse_args(argv)
    return program.run(Agent(options=options).run, name="pilot-agent")


if __name__ == "__main__":
    sys.exit(main())
