"""Istio's own YAML as a test corpus: documents from a checkout, each with the verdict Istio gives.

The corpus is never copied into this repository (it is Istio's, Apache-licensed, and changes
with every release); point the measurement at a checkout of istio/istio and istio/api instead.
Sources, by file type:

- `.yaml`/`.yml` files (samples/, tests/testdata/config, pkg/config/validation/testdata/crds);
- ```yaml blocks in the comments of `.proto` files (istio/api's reference examples) and in
  `.md` files.

A document is expected to be refused when its file name says `invalid` (Istio's own test data
does so) or when it carries Istio's `_err` key (the expected error of those files); every other
document of an Istio kind is expected to be accepted.
"""

from __future__ import annotations

import dataclasses
import enum
import pathlib
import re
from collections.abc import Iterator

import yaml

ISTIO_GROUPS = ("networking.istio.io", "security.istio.io", "config.istio.io")
_FENCE_OPEN = re.compile(r"^```ya?ml\s*$")
_PROTO_COMMENT = re.compile(r"^\s*//\s?")
# Helm and Go templates are not YAML until rendered.
_TEMPLATE = re.compile(r"{{|{%")


class Expect(enum.Enum):
    VALID = "valid"
    INVALID = "invalid"


@dataclasses.dataclass(frozen=True)
class Document:
    source: str  # path relative to the corpus root, plus "#block" for embedded examples
    index: int  # 1-based position in its stream
    data: dict
    expect: Expect

    @property
    def api_version(self) -> str:
        return str(self.data.get("apiVersion", ""))

    @property
    def kind(self) -> str:
        return str(self.data.get("kind", ""))


@dataclasses.dataclass
class Skipped:
    """What the corpus holds that is not a document of an Istio kind, counted by reason."""

    counts: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, reason: str) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1


def documents(root: pathlib.Path, skipped: Skipped) -> Iterator[Document]:
    """Every document of an Istio group under `root`, in a stable order."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = str(path.relative_to(root))
        if path.suffix in (".yaml", ".yml"):
            yield from _stream(relative, path.read_text(errors="replace"), skipped)
        elif path.suffix in (".proto", ".md"):
            text = path.read_text(errors="replace")
            for number, block in enumerate(_fenced_yaml(text, proto=path.suffix == ".proto")):
                yield from _stream(f"{relative}#{number + 1}", block, skipped)


def _fenced_yaml(text: str, *, proto: bool) -> Iterator[str]:
    lines = text.splitlines()
    if proto:
        lines = [_PROTO_COMMENT.sub("", line, count=1) for line in lines]
    block: list[str] | None = None
    for line in lines:
        stripped = line.strip()
        if block is None:
            if _FENCE_OPEN.match(stripped):
                block = []
        elif stripped == "```":
            yield "\n".join(block) + "\n"
            block = None
        else:
            block.append(line)


def _stream(source: str, text: str, skipped: Skipped) -> Iterator[Document]:
    if _TEMPLATE.search(text):
        skipped.add("template (not YAML until rendered)")
        return
    try:
        raw = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        skipped.add("not parseable YAML")
        return
    invalid_file = "invalid" in pathlib.PurePath(source.split("#")[0]).name
    for index, data in enumerate(raw, start=1):
        if not isinstance(data, dict):
            if data is not None:
                skipped.add("not an object")
            continue
        group = str(data.get("apiVersion", "")).partition("/")[0]
        if group not in ISTIO_GROUPS:
            skipped.add("not an Istio kind")
            continue
        expect = Expect.INVALID if invalid_file or "_err" in data else Expect.VALID
        data = {k: v for k, v in data.items() if k != "_err"}
        yield Document(source, index, data, expect)
