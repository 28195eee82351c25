"""A host outside the mesh for end-to-end tests on the namespace platform.

It is a network namespace of its own with a veth on the node's bridge, as a machine on the
pods' network would be: no sidecar, no injection, one HTTP server answering with a label
(`interception_apps serve`). Everything it makes is removed on the way out.
"""

from __future__ import annotations

import contextlib
import pathlib
import subprocess
import sys
from collections.abc import Iterator

from pkg.testing.wait import poll
from tests.e2e.meshtest import ROOT
from tools.local.podnetwork import NodeNetwork


@contextlib.contextmanager
def external_http_server(
    *,
    namespace: str,
    link: str,
    network: NodeNetwork,
    ip: str,
    port: int,
    label: str,
    log: pathlib.Path,
    also: tuple[str, ...] = (),
) -> Iterator[str]:
    """Serve `label` on http://`ip`:`port`/ from `namespace`; yields that URL. `also`: more
    `interception_apps serve` specs for the same host (e.g. `echo:<ip>:9000:one`)."""
    steps = [("netns", "add", namespace),
             ("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", namespace),
             ("link", "set", link, "master", network.bridge, "up"),
             ("-n", namespace, "link", "set", "lo", "up"),
             ("-n", namespace, "addr", "add", f"{ip}/{network.network.prefixlen}", "dev", "eth0"),
             ("-n", namespace, "link", "set", "eth0", "up")]  # fmt: skip
    server = None
    try:
        for step in steps:
            subprocess.run(["ip", *step], check=True, capture_output=True, timeout=10)
        with log.open("w") as out:
            server = subprocess.Popen(
                ["ip", "netns", "exec", namespace, sys.executable, "-m",
                 "tests.e2e.interception_apps", "serve", f"http:{ip}:{port}:{label}", *also],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
            )  # fmt: skip
        poll(lambda: "ready" in log.read_text(), "the external server", 20)
        yield f"http://{ip}/" if port == 80 else f"http://{ip}:{port}/"
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        subprocess.run(["ip", "link", "delete", link], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "delete", namespace], capture_output=True, timeout=10)
