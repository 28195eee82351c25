"""Starting the mesh's programs from tests the way users start them: `python -m <module>`.

pytest makes the repository root importable for itself only (its own sys.path); a child
process gets it through PYTHONPATH here. Under Bazel the root is the runfiles tree, already
on PYTHONPATH, so the same command runs there too.
"""

from __future__ import annotations

import os
import pathlib
import sys

# Not resolve(): under Bazel this file is a symlink into the source tree, and the runfiles
# tree (where generated code lives) is the root wanted.
ROOT = pathlib.Path(__file__).absolute().parents[2]


def command(module: str, *args: str) -> list[str]:
    """`python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def environ(**extra: str) -> dict[str, str]:
    """This process's environment, `extra` added, with the repository root importable."""
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(paths)}
