"""The images the manifest names: a Dockerfile per component, checked without a Docker
engine. Each parses, copies only what exists, and its entrypoint module starts from the
files it copies alone (imported in a fresh interpreter whose path is a tree of exactly the
copied folders, with the packages requirements.lock installs)."""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import subprocess
import sys

import pytest

from manifests import generate

ROOT = pathlib.Path(__file__).resolve().parents[1]
IMAGES = {  # values.yaml's image name -> its Dockerfile
    "pilot": "pilot/docker/Dockerfile.pilot",
    "proxyv2": "proxy/docker/Dockerfile.proxyv2",
    "mixer": "mixer/docker/Dockerfile.mixer",
    "istio-ca": "security/docker/Dockerfile.istio-ca",
    "node-agent": "security/docker/Dockerfile.node-agent",
}
_INSTRUCTIONS = {
    "FROM",
    "WORKDIR",
    "COPY",
    "RUN",
    "ENV",
    "USER",
    "EXPOSE",
    "ENTRYPOINT",
    "CMD",
    "ARG",
    "LABEL",
}


def instructions(path: pathlib.Path) -> list[tuple[str, str]]:
    out, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\") + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def test_every_image_of_the_values_has_a_dockerfile() -> None:
    values = generate.default_values()
    named = {values["global"]["proxy"]["image"], values["global"]["proxy_init"]["image"], values["pilot"]["image"],
             values["mixer"]["image"], values["ca"]["image"], values["nodeAgent"]["image"]}  # fmt: skip
    assert named == set(IMAGES)


@pytest.mark.parametrize(("image", "dockerfile"), IMAGES.items())
def test_dockerfile_copies_what_exists_and_runs_its_module(
    image: str, dockerfile: str, tmp_path: pathlib.Path
) -> None:
    steps = instructions(ROOT / dockerfile)
    assert all(word in _INSTRUCTIONS for word, _ in steps), steps
    assert steps[0][0] == "FROM"
    assert steps[0][1].startswith("python:3.11")
    copied: list[str] = []
    for word, rest in steps:
        if word != "COPY":
            continue
        parts = shlex.split(rest)
        if parts[0].startswith("--from="):
            # From the build stage: the installed packages, or api/ with its generated code.
            if parts[1].startswith("/src/"):
                copied.append(parts[1].removeprefix("/src/"))
            continue
        for source in parts[:-1]:
            assert (ROOT / source).exists(), (
                f"{dockerfile}: COPY {source}: no such file in the repository"
            )
        if parts[-1] != "./":
            copied.extend(parts[:-1])
    entrypoint = json.loads(next(rest for word, rest in steps if word == "ENTRYPOINT"))
    assert entrypoint[:2] == ["python", "-m"], entrypoint
    module = entrypoint[2]
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()
    assert "if __name__ ==" in (ROOT / (module.replace(".", "/") + ".py")).read_text()
    # The image's tree: only the folders it copies.
    for folder in dict.fromkeys(copied):
        target = tmp_path / folder
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(ROOT / folder)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}, sys; sys.exit(0 if hasattr({module}, 'main') else 3)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
