"""The image table's programs: repository programs play an image whatever the pod's command,
a host program's entrypoint is the container's `command` to replace (sleep's curl image)."""

from __future__ import annotations

import sys

import pytest

from tools.local.images import ImageTable, ImageTableError, Program, _program


def test_a_repository_program_ignores_the_containers_command():
    program = Program(image="x", module="samples.httpbin.src.httpbin", args=("--port", "80"))
    argv, _ = program.command(None, {}, {}, ["/bin/sleep", "infinity"])
    assert argv == [sys.executable, "-m", "samples.httpbin.src.httpbin", "--port", "80"]


def test_a_host_programs_entrypoint_is_replaced_by_the_command_with_the_images_args():
    program = Program(image="curl", entrypoint=("curl",), args=("--help",))
    assert program.command(None, {}, {})[0] == ["curl", "--help"]
    # As Kubernetes: a command without args drops the image's args too.
    assert program.command(None, {}, {}, ["/bin/sleep", "infinity"])[0] == [
        "/bin/sleep",
        "infinity",
    ]
    env = {"SECONDS_TO_WAIT": "5"}
    argv, _ = program.command(["$(SECONDS_TO_WAIT)"], env, {}, ["sleep"])
    assert argv == ["sleep", "5"]


def test_the_table_plays_istios_sleep_sample_with_the_hosts_programs():
    program = ImageTable.load().resolve("docker.io/curlimages/curl:8.16.0")
    assert program.user == 100  # the image's curl_user
    argv, _ = program.command(None, {}, {}, ["/bin/sleep", "infinity"])
    assert argv == ["/bin/sleep", "infinity"]
    assert ImageTable.load().resolve("curlimages/curl") == program


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"image": "x"}, "exactly one of python, module and entrypoint"),
        ({"image": "x", "module": "m", "entrypoint": ["curl"]}, "exactly one of"),
        ({"image": "x", "entrypoint": "curl"}, "entrypoint must be a list of strings"),
    ],
)
def test_a_wrong_entry_is_refused(entry, words):
    with pytest.raises(ImageTableError, match=words):
        _program(entry, "images[0]")
