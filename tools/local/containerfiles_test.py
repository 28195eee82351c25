"""Whether a container's user gets through to its files, and the folder it is given."""

from __future__ import annotations

import os
import pathlib
import shutil
import stat
import tempfile
from collections.abc import Iterator

import pytest

from tools.local import containerfiles


@pytest.fixture
def root() -> Iterator[pathlib.Path]:
    folder = pathlib.Path(tempfile.mkdtemp(prefix="containerfiles-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_closed_folder_on_the_way_is_named(root: pathlib.Path) -> None:
    closed = root / "closed"
    (closed / "pod").mkdir(parents=True)
    closed.chmod(0o700)
    why = containerfiles.unreachable(closed / "pod", 1337, 1337)
    assert str(closed) in why
    assert "drwx------" in why
    assert "uid 1337 gid 1337" in why
    assert containerfiles.unreachable(closed / "pod", 0, 0) == ""  # root goes anywhere


def test_open_owned_and_not_yet_made_folders_let_it_through(root: pathlib.Path) -> None:
    (root / "pod").mkdir()
    assert containerfiles.unreachable(root / "pod", 1337, 1337) == ""
    assert containerfiles.unreachable(root / "pod" / "sds" / "later", 1337, 1337) == ""
    mine = root / "mine"
    mine.mkdir(mode=0o700)
    if os.geteuid() == 0:
        os.chown(mine, 1337, 1337)
        assert containerfiles.unreachable(mine, 1337, 1337) == ""
        assert "does not let uid 1000" in containerfiles.unreachable(mine, 1000, 1000)


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to uid 1337 needs root")
def test_the_container_gets_a_folder_of_its_own(root: pathlib.Path) -> None:
    folder = containerfiles.own_folder(root / "pod", "istio-proxy", 1337, 1337)
    info = folder.stat()
    assert folder == root / "pod" / "istio-proxy"
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (1337, 1337, 0o750)
