"""Kubernetes' remote command protocol over WebSockets: what `kubectl exec` speaks (no I/O).

A `pods/<name>/exec` request names the command and which streams it wants in its query
(`command` once per argument, `container`, `stdin`, `stdout`, `stderr`, `tty`). Upgraded to
a WebSocket with subprotocol `v5.channel.k8s.io` (kubectl since 1.30) or `v4.channel.k8s.io`
(the Python client), every binary message is one channel byte and the data:

    0 stdin   client -> server
    1 stdout  server -> client
    2 stderr  server -> client
    3 error   server -> client, once, last: a metav1.Status, `Success`, or `Failure` with
              reason `NonZeroExitCode` and an `ExitCode` cause carrying the code
    4 resize  client -> server, a terminal's size as JSON {"Width": w, "Height": h}
  255 close   v5 only: [255, n] says the sender will write no more on channel n (the client's
              end of stdin, so `kubectl exec -i ... -- cat` ends)

The server closes the WebSocket after the status.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

STDIN = 0
STDOUT = 1
STDERR = 2
ERROR = 3
RESIZE = 4
CLOSE = 255

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = (V5, V4)  # the server's preference, newest first

_TRUE = ("true", "1")


class ExecOptionsError(ValueError):
    """The request's query asks for an exec Kubernetes refuses: why, in its words."""


@dataclasses.dataclass(frozen=True)
class ExecOptions:
    command: tuple[str, ...]
    container: str = ""
    stdin: bool = False
    stdout: bool = False
    stderr: bool = False
    tty: bool = False

    def query(self) -> list[tuple[str, str]]:
        """The options as the query of a request that passes them on (to the kubelet)."""
        flags = [
            ("stdin", self.stdin),
            ("stdout", self.stdout),
            ("stderr", self.stderr),
            ("tty", self.tty),
        ]
        return [
            *(("command", c) for c in self.command),
            *((name, "true") for name, on in flags if on),
            *((("container", self.container),) if self.container else ()),
        ]


def parse_options(query: Mapping[str, str], commands: Sequence[str]) -> ExecOptions:
    """The PodExecOptions of a request's query (`commands`: every `command` value, in order)."""

    def flag(name: str) -> bool:
        return query.get(name, "").lower() in _TRUE

    stdin, stdout, stderr, tty = flag("stdin"), flag("stdout"), flag("stderr"), flag("tty")
    if not commands:
        raise ExecOptionsError("you must specify at least 1 command")
    if not (stdin or stdout or stderr):
        raise ExecOptionsError("you must specify at least 1 of stdin, stdout, stderr")
    # A terminal has one output: Kubernetes drops stderr rather than refuse the request.
    return ExecOptions(
        command=tuple(commands),
        container=query.get("container", ""),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr and not tty,
        tty=tty,
    )


class FramingError(ValueError):
    """A message that is not a frame of the protocol."""


@dataclasses.dataclass(frozen=True)
class Frame:
    channel: int
    data: bytes
    closes: bool = False  # a v5 close signal for `channel` (no data)


def frame(channel: int, data: bytes = b"") -> bytes:
    return bytes((channel,)) + data


def close_frame(channel: int) -> bytes:
    return bytes((CLOSE, channel))


def parse(message: bytes, protocol: str) -> Frame:
    if not message:
        raise FramingError("an empty message has no channel")
    channel = message[0]
    if channel == CLOSE and protocol == V5:
        if len(message) != 2:
            raise FramingError(f"a close signal is 2 bytes, not {len(message)}")
        return Frame(message[1], b"", closes=True)
    if channel > RESIZE:
        raise FramingError(f"no channel {channel} in {protocol}")
    return Frame(channel, message[1:])


@dataclasses.dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


def parse_resize(data: bytes) -> TerminalSize:
    try:
        size = json.loads(data)
        width, height = size["Width"], size["Height"]
    except (ValueError, TypeError, KeyError):
        raise FramingError(f"a resize is {{'Width': w, 'Height': h}}, not {data[:64]!r}") from None
    if not all(isinstance(v, int) and 0 <= v < 65536 for v in (width, height)):
        raise FramingError(f"terminal size out of range: {width}x{height}")
    return TerminalSize(width, height)


# The status on the error channel, as the kubelet writes it.


def success() -> dict[str, Any]:
    return {"metadata": {}, "status": "Success"}


def exited(code: int, command: Sequence[str]) -> dict[str, Any]:
    """The status of a command that ended: Success, or the NonZeroExitCode failure that
    kubectl turns into its own exit code."""
    if code == 0:
        return success()
    return {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        f"[{' '.join(command)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure(message: str) -> dict[str, Any]:
    """A command that could not run at all (kubectl prints it and exits 1)."""
    return {
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


def status_frame(status: Mapping[str, Any]) -> bytes:
    return frame(ERROR, json.dumps(status).encode())


def exit_code(status: Mapping[str, Any]) -> int | None:
    """The command's exit code a status tells (0 for Success), None when it tells none."""
    if status.get("status") == "Success":
        return 0
    if status.get("reason") != "NonZeroExitCode":
        return None
    for cause in (status.get("details") or {}).get("causes") or []:
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None
