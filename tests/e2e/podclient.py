"""Connections made from inside a captured pod, as its app makes them.

The command runs in the pod's network namespace as the app's user with nothing in its
environment (`env -i`), so only the pod's iptables can hand its connections to the sidecar.
The client is an inline script, not a module of this repository: under Bazel the runfiles
are in root's home, which the app's user cannot read.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys

# One connection per count, one line sent on each: what answered first (its first word),
# "closed" for no answer, or the error's name.
_CONNECT = """
import collections, json, socket, sys
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
seen = collections.Counter()
for _ in range(count):
    try:
        with socket.create_connection((host, port), timeout=5) as conn:
            conn.sendall(b"hello\\n")
            line = conn.makefile("rb").readline().decode()
            seen[line.split(" ")[0] if line else "closed"] += 1
    except OSError as error:
        seen[type(error).__name__] += 1
print(json.dumps(seen))
"""


def tcp_from_pod(
    netns: str, user: str, host: str, port: int, count: int
) -> collections.Counter[str]:
    """`count` TCP connections to `host:port` from the pod of namespace `netns`, as `user`."""
    command = ["ip", "netns", "exec", netns, "env", "-i", "setpriv", f"--reuid={user}",
               "--clear-groups", "--", sys.executable, "-c", _CONNECT, host, str(port),
               str(count)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return collections.Counter(json.loads(done.stdout))
