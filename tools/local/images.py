"""The image table (samples/bookinfo/platform/local/images.yaml): the program that plays an image.

The local kubelet asks `ImageTable.resolve(image)` for each container; an image the table does
not know cannot be pulled (the pod waits with ErrImagePull, as on a node that cannot reach the
registry). `Program.command(...)` is the argv and environment a container then runs with.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from tools.local.topology import ROOT

DEFAULT_TABLE = ROOT / "samples/bookinfo/platform/local/images.yaml"
CONFIG_KEY = "images.yaml"  # the table's key in its ConfigMap
_KUBE_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_FACT = re.compile(r"\{([a-z_]+)\}")


class UnknownImage(LookupError):
    """No program plays this image."""


class ImageTableError(ValueError):
    """The table itself is wrong: which entry, what."""


@dataclasses.dataclass(frozen=True)
class Program:
    image: str
    python: str = ""  # a file of the repository, run with this Python
    module: str = ""  # or a module, run with -m
    # or a program of this machine: the image's ENTRYPOINT, which a container's `command`
    # replaces (a client image, whose container runs what the pod says: the host's sleep)
    entrypoint: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    # Added after the args: for every command (key ""), or only when the args start with the
    # key (an image whose program has subcommands: pilot-agent's `proxy`, `istio-iptables`).
    append: tuple[tuple[str, tuple[str, ...]], ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    user: int | None = None  # the image's USER: containers run as it unless runAsUser says

    def command(
        self,
        container_args: Sequence[str] | None,
        container_env: Mapping[str, str],
        facts: Mapping[str, str],
        container_command: Sequence[str] | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """(argv, env): the image's program with the container's args (else the image's), the
        image's env under the container's, pod facts filled in and `$(VAR)` expanded as
        Kubernetes expands a container's env and args. Only a host program's entrypoint is
        the container's `command` to replace (and then, as Kubernetes, the image's args go
        too); a repository program is what plays the image, whatever the pod says."""
        env = {k: fill(v, facts) for k, v in self.env}
        env.update(expand(dict(container_env), env))
        replaced = bool(self.entrypoint) and container_command is not None
        if container_args is not None:
            args = list(container_args)
        else:
            args = [] if replaced else [fill(a, facts) for a in self.args]
        args = [expand_one(a, env) for a in args]
        for first, extra in self.append:
            if not first or args[:1] == [first]:
                args += [fill(a, facts) for a in extra]
        if self.entrypoint:
            chosen = container_command if container_command is not None else self.entrypoint
            head = [expand_one(a, env) for a in chosen]
        elif self.module:
            head = [sys.executable, "-m", self.module]
        else:
            head = [sys.executable, str(ROOT / self.python)]
        return head + args, env


def fill(text: str, facts: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in facts:
            raise KeyError(f"the image table names {{{key}}}, which this node does not know")
        return facts[key]

    return _FACT.sub(one, text)


def expand_one(text: str, env: Mapping[str, str]) -> str:
    """`$(VAR)` replaced by the variable's value; an unknown one stays as written (Kubernetes'
    rule), `$$(VAR)` is a literal `$(VAR)`."""
    parts = text.split("$$")
    return "$".join(_KUBE_VAR.sub(lambda m: env.get(m.group(1), m.group(0)), p) for p in parts)


def expand(container_env: dict[str, str], base: Mapping[str, str]) -> dict[str, str]:
    """A container's variables in order, each able to use those before it (and the image's)."""
    seen = dict(base)
    out = {}
    for name, value in container_env.items():
        out[name] = seen[name] = expand_one(value, seen)
    return out


class ImageTable:
    def __init__(self, programs: Mapping[str, Program]) -> None:
        self._programs = dict(programs)

    @classmethod
    def load(cls, path: str | pathlib.Path = DEFAULT_TABLE) -> ImageTable:
        path = pathlib.Path(path)
        try:
            data = yaml.safe_load(path.read_text())
            if isinstance(data, dict) and data.get("kind") == "ConfigMap":
                # The table as a kubelet's configuration: a ConfigMap holding images.yaml.
                data = yaml.safe_load((data.get("data") or {}).get(CONFIG_KEY) or "")
        except (OSError, yaml.YAMLError) as error:
            raise ImageTableError(f"{path}: {error}") from None
        programs: dict[str, Program] = {}
        for index, entry in enumerate((data or {}).get("images") or []):
            program = _program(entry, f"{path}: images[{index}]")
            for name in (program.image, *entry.get("aliases", ())):
                if name in programs:
                    raise ImageTableError(f"{path}: images[{index}]: {name} is listed twice")
                programs[name] = program
        return cls(programs)

    def resolve(self, image: str) -> Program:
        repository = repository_of(image)
        program = self._programs.get(repository)
        if program is None:
            raise UnknownImage(
                f'Failed to pull image "{image}": the local platform has no program for '
                f"{repository} (add it to {DEFAULT_TABLE.relative_to(ROOT)})"
            )
        return program


def repository_of(image: str) -> str:
    """`registry.istio.io/release/x:1.20.3` or `x@sha256:...` -> `registry.istio.io/release/x`."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def _program(entry: Any, where: str) -> Program:
    if not isinstance(entry, dict) or not entry.get("image"):
        raise ImageTableError(f"{where}: an entry needs an image")
    if sum(bool(entry.get(k)) for k in ("python", "module", "entrypoint")) != 1:
        raise ImageTableError(f"{where}: give exactly one of python, module and entrypoint")
    entrypoint = entry.get("entrypoint") or []
    if not isinstance(entrypoint, list) or not all(isinstance(a, str) for a in entrypoint):
        raise ImageTableError(f"{where}: entrypoint must be a list of strings")
    if entry.get("python") and not (ROOT / entry["python"]).is_file():
        raise ImageTableError(f"{where}: {entry['python']} is not a file of the repository")
    env = entry.get("env") or {}
    if not isinstance(env, dict):
        raise ImageTableError(f"{where}: env must map names to values")
    append = entry.get("append") or []
    if not isinstance(append, dict):
        append = {"": append}
    if not all(isinstance(v, list) for v in append.values()):
        raise ImageTableError(f"{where}: append must be a list, or map a subcommand to a list")
    user = entry.get("user")
    if user is not None and (not isinstance(user, int) or isinstance(user, bool) or user < 0):
        raise ImageTableError(f"{where}: user must be a uid (a number), not {user!r}")
    return Program(
        image=str(entry["image"]),
        python=str(entry.get("python") or ""),
        module=str(entry.get("module") or ""),
        entrypoint=tuple(entrypoint),
        args=tuple(str(a) for a in entry.get("args") or ()),
        append=tuple((str(k), tuple(str(a) for a in v)) for k, v in append.items()),
        env=tuple((str(k), str(v)) for k, v in env.items()),
        user=user,
    )
