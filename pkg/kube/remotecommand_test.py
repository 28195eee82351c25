"""The remote command protocol's frames, statuses and options, as kubectl and the Python
client read and write them."""

from __future__ import annotations

import json

import pytest
from multidict import MultiDict

from pkg.kube import remotecommand as rc


def test_a_frame_is_its_channel_byte_and_the_data():
    assert rc.frame(rc.STDOUT, b"hello") == b"\x01hello"
    assert rc.frame(rc.STDERR, b"") == b"\x02"
    assert rc.parse(b"\x00typed", rc.V5) == rc.Frame(rc.STDIN, b"typed")
    assert rc.parse(b"\x04{}", rc.V4) == rc.Frame(rc.RESIZE, b"{}")


def test_the_close_signal_is_v5s_alone():
    assert rc.close_frame(rc.STDIN) == b"\xff\x00"
    assert rc.parse(b"\xff\x00", rc.V5) == rc.Frame(rc.STDIN, b"", closes=True)
    with pytest.raises(rc.FramingError, match="2 bytes"):
        rc.parse(b"\xff\x00\x01", rc.V5)
    with pytest.raises(rc.FramingError, match="no channel 255"):
        rc.parse(b"\xff\x00", rc.V4)


def test_messages_that_are_no_frames_are_refused():
    with pytest.raises(rc.FramingError, match="empty"):
        rc.parse(b"", rc.V5)
    with pytest.raises(rc.FramingError, match="no channel 9"):
        rc.parse(b"\x09x", rc.V5)


def test_a_resize_is_a_width_and_a_height():
    assert rc.parse_resize(b'{"Width": 80, "Height": 24}') == rc.TerminalSize(80, 24)
    for bad in (b"80x24", b'{"Width": 80}', b'{"Width": -1, "Height": 2}', b"[]"):
        with pytest.raises(rc.FramingError):
            rc.parse_resize(bad)


def test_a_zero_exit_is_success_and_the_rest_carry_their_code():
    assert rc.exited(0, ["true"]) == {"metadata": {}, "status": "Success"}
    status = rc.exited(3, ["sh", "-c", "exit 3"])
    assert status["status"] == "Failure"
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert status["message"] == (
        "command terminated with non-zero exit code: error executing command "
        "[sh -c exit 3], exit code 3"
    )
    assert rc.exit_code(status) == 3
    assert rc.exit_code(rc.success()) == 0
    assert rc.exit_code(rc.failure("exec: no such file")) is None
    frame = rc.status_frame(status)
    assert frame[0] == rc.ERROR
    assert json.loads(frame[1:]) == status


def test_options_come_from_the_query_with_every_command_argument():
    query = MultiDict(
        [
            ("command", "sh"),
            ("command", "-c"),
            ("command", "exit 3"),
            ("container", "sleep"),
            ("stdout", "true"),
            ("stderr", "1"),
        ]
    )
    options = rc.parse_options(query, query.getall("command"))
    assert options == rc.ExecOptions(("sh", "-c", "exit 3"), "sleep", stdout=True, stderr=True)
    assert options.query() == [
        ("command", "sh"),
        ("command", "-c"),
        ("command", "exit 3"),
        ("stdout", "true"),
        ("stderr", "true"),
        ("container", "sleep"),
    ]


def test_a_terminal_has_no_stderr_of_its_own():
    query = {"stdin": "true", "stdout": "true", "stderr": "true", "tty": "true"}
    options = rc.parse_options(query, ["sh"])
    assert (options.tty, options.stderr) == (True, False)


def test_an_exec_without_a_command_or_any_stream_is_refused():
    with pytest.raises(rc.ExecOptionsError, match="at least 1 command"):
        rc.parse_options({"stdout": "true"}, [])
    with pytest.raises(rc.ExecOptionsError, match="at least 1 of stdin, stdout, stderr"):
        rc.parse_options({"stdout": "false"}, ["ls"])
