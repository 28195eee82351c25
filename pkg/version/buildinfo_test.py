"""Build info: Istio's JSON names and long form; the revision read from git's files."""

from __future__ import annotations

import platform
import subprocess

import pytest

from pkg.version import buildinfo


def test_json_round_trip_and_long_form():
    info = buildinfo.get()
    assert info.version == buildinfo.VERSION
    assert info.python_version == platform.python_version()
    assert buildinfo.BuildInfo.from_json(info.to_json()) == info
    assert set(info.to_json()) == {"version", "revision", "python_version", "status", "tag"}
    assert info.long_form().startswith(f'version.BuildInfo{{Version:"{info.version}", GitRevision:')


def git(cwd, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=30,
        env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
             "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(cwd)},
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def repo(tmp_path):
    main = tmp_path / "main"
    main.mkdir()
    git(main, "init", "-q", "-b", "main")
    (main / "f").write_text("x")
    git(main, "add", "f")
    git(main, "commit", "-qm", "one")
    return main


def test_revision_of_a_clone_a_packed_ref_and_a_worktree(repo, tmp_path):
    head = git(repo, "rev-parse", "HEAD")
    assert buildinfo.git_revision(repo) == head
    git(repo, "pack-refs", "--all")
    assert buildinfo.git_revision(repo) == head
    git(repo, "worktree", "add", "-q", "-b", "side", str(tmp_path / "wt"))
    assert buildinfo.git_revision(tmp_path / "wt") == head
    git(repo, "checkout", "-q", "--detach")
    assert buildinfo.git_revision(repo) == head


def test_outside_a_checkout_it_is_unknown(tmp_path):
    assert buildinfo.git_revision(tmp_path) == "unknown"
