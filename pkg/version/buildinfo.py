"""What build of the mesh a process runs, as Istio's version.BuildInfo reports it.

Every component reports the same: Pilot on its debug port (`/version`), istioctl for the
client. The version is the project's (pyproject.toml); the revision is the git commit the
source tree is checked out at, read from the repository's files (no git process), or
"unknown" outside a checkout (a Bazel sandbox, an installed copy).
"""

from __future__ import annotations

import dataclasses
import pathlib
import platform
from typing import Any

VERSION = "0.1.0"  # keep in step with pyproject.toml
ROOT = pathlib.Path(__file__).resolve().parents[2]  # the source tree, also from runfiles


@dataclasses.dataclass(frozen=True)
class BuildInfo:
    version: str
    revision: str
    python_version: str
    status: str  # how the tree differed from the revision; "unknown": not checked
    tag: str

    def to_json(self) -> dict[str, Any]:
        """Istio's JSON names, Python's version in place of Go's."""
        return {
            "version": self.version,
            "revision": self.revision,
            "python_version": self.python_version,
            "status": self.status,
            "tag": self.tag,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BuildInfo:
        return cls(
            version=str(data.get("version", "")),
            revision=str(data.get("revision", "")),
            python_version=str(data.get("python_version", "")),
            status=str(data.get("status", "")),
            tag=str(data.get("tag", "")),
        )

    def long_form(self) -> str:
        """As Istio's `version --short=false` prints a BuildInfo."""
        return (
            f'version.BuildInfo{{Version:"{self.version}", GitRevision:"{self.revision}", '
            f'PythonVersion:"{self.python_version}", BuildStatus:"{self.status}", '
            f'GitTag:"{self.tag}"}}'
        )


def get() -> BuildInfo:
    return BuildInfo(
        version=VERSION,
        revision=git_revision(ROOT),
        python_version=platform.python_version(),
        status="unknown",
        tag=VERSION,
    )


def git_revision(root: pathlib.Path) -> str:
    """The commit HEAD names in the checkout at `root` (a clone or a worktree), or "unknown"."""
    try:
        git = root / ".git"
        if git.is_file():  # a worktree: "gitdir: <path>"
            git = (root / git.read_text().split(":", 1)[1].strip()).resolve()
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head  # detached
        ref = head[5:]
        common = git
        if (git / "commondir").is_file():
            common = (git / (git / "commondir").read_text().strip()).resolve()
        for folder in (git, common):
            if (folder / ref).is_file():
                return (folder / ref).read_text().strip()
        for line in (common / "packed-refs").read_text().splitlines():
            sha, _, name = line.partition(" ")
            if name == ref:
                return sha
    except (OSError, IndexError):
        pass
    return "unknown"
