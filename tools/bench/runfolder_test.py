"""The run folder goes when the run succeeds and stays, said, when it fails."""

from __future__ import annotations

import pathlib

import pytest

from tools.bench.runfolder import run_folder


def test_a_run_that_succeeds_leaves_nothing():
    with run_folder("test") as folder:
        (folder / "x.log").write_text("fine\n")
    assert not folder.exists()


def fail_in(folder_name: str, seen: list[pathlib.Path]) -> pathlib.Path:
    with run_folder(folder_name, on_failure=seen.append) as folder:
        (folder / "x.log").write_text("why\n")
        raise RuntimeError(f"boom in {folder}")


def test_a_run_that_fails_keeps_its_logs_and_says_where(capsys):
    seen: list[pathlib.Path] = []
    with pytest.raises(RuntimeError, match="boom") as failure:
        fail_in("test", seen)
    [folder] = seen
    try:
        assert str(folder) in str(failure.value)
        assert (folder / "x.log").read_text() == "why\n"
        assert f"logs kept in {folder}" in capsys.readouterr().err
    finally:
        (folder / "x.log").unlink()
        folder.rmdir()
