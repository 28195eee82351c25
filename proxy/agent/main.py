"""pilot-agent's entry point: `python -m proxy.agent.main proxy sidecar|router --ip ... --pod ...
--run-dir ...`, or `... istio-iptables ...`, the capture the istio-init container installs (one
image serves both containers, as Istio's proxyv2 does).

Runs until SIGTERM or SIGINT, then leaves the mesh, drains Envoy and exits 0; a second signal
stops it at once.
"""

from __future__ import annotations

import sys

from pkg.aio import program


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["istio-iptables"]:
        from proxy.iptables.cmd import main as istio_iptables

        return istio_iptables(args[1:])

    from proxy.agent.agent import Agent
    from proxy.agent.options import parse_args

    options = parse_args(args)
    return program.run(Agent(options=options).run, name="pilot-agent")


if __name__ == "__main__":
    sys.exit(main())
