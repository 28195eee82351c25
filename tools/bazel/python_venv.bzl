"""Registers the project's virtual environment as Bazel's Python toolchain.

The interpreter path must be absolute, and it differs from clone to clone, so a repository
rule finds it: `<workspace>/.venv/bin/python`, made by `make setup` from requirements.lock.

Programs and tests run with `-P` (no script directory on sys.path): Bazel starts a binary as
`python path/to/main.py`, which would put e.g. proxy/agent/ first on sys.path, where its
modules could shadow top-level packages. Imports are rooted at the runfiles tree, as they
are at the repository root for `python -m`.
"""

_BUILD = """
load("@bazel_tools//tools/python:toolchain.bzl", "py_runtime_pair")

py_runtime(
    name = "runtime",
    interpreter_path = "{safe_python}",
    python_version = "PY3",
    stub_shebang = "#!{python}",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":runtime",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

def _python_venv_impl(rctx):
    workspace = rctx.path(Label("//:WORKSPACE")).dirname
    python = workspace.get_child(rctx.attr.venv).get_child("bin").get_child("python")
    if not python.exists:
        fail("no Python at {}: run `make setup` first (it builds the virtual environment)".format(python))
    rctx.file("WORKSPACE", 'workspace(name = "{}")\n'.format(rctx.name))
    rctx.file("python", '#!/bin/sh\nexec "{}" -P "$@"\n'.format(python), executable = True)
    rctx.file("BUILD.bazel", _BUILD.format(python = python, safe_python = rctx.path("python")))

python_venv = repository_rule(
    implementation = _python_venv_impl,
    attrs = {"venv": attr.string(default = ".venv")},
    local = True,
)
