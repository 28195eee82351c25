"""A benchmark's run folder: fresh for each run, removed when the run succeeds, kept (and its
path said) when it fails, so that its processes' logs can be read."""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator


def _nothing(_: pathlib.Path) -> None:
    pass


@contextlib.contextmanager
def run_folder(
    name: str, *, on_failure: Callable[[pathlib.Path], None] = _nothing
) -> Iterator[pathlib.Path]:
    """`on_failure` runs before the path is printed (e.g. to print the logs' last lines)."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    try:
        yield folder
    except BaseException:
        on_failure(folder)
        print(f"logs kept in {folder}", file=sys.stderr)
        raise
    shutil.rmtree(folder, ignore_errors=True)
