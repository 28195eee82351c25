"""nanobind (from the project's virtual environment) and the Python headers, for C++ bindings.

The nanobind wheel pinned in requirements.lock carries its C++ sources; this repository rule
points Bazel at them and at the headers of the venv's Python, so `@nanobind//:nanobind` builds
an extension with no network and no copy of nanobind in the tree.
"""

_BUILD = """
package(default_visibility = ["//visibility:public"])

cc_library(
    name = "python_headers",
    hdrs = glob(["python_include/**/*.h"]),
    includes = ["python_include"],
)

# libnanobind, compiled as nb_combined.cpp (nanobind's single-file build).
cc_library(
    name = "nanobind",
    srcs = ["nanobind/src/nb_combined.cpp"],
    hdrs = glob([
        "nanobind/include/**/*.h",
        "nanobind/ext/robin_map/include/**/*.h",
    ]),
    textual_hdrs = glob(
        ["nanobind/src/*.cpp", "nanobind/src/*.h"],
        exclude = ["nanobind/src/nb_combined.cpp"],
    ),
    includes = ["nanobind/include", "nanobind/ext/robin_map/include"],
    copts = [
        "-std=c++17",
        "-fvisibility=hidden",
        "-fno-strict-aliasing",
        "-O2",
        "-DNDEBUG",
        "-DNB_COMPACT_ASSERTIONS",
        "-w",
    ],
    defines = ["NB_COMPACT_ASSERTIONS"],
    deps = [":python_headers"],
)
"""

_QUERY = """
import nanobind, sysconfig
print(nanobind.source_dir().rsplit('/src', 1)[0])
print(sysconfig.get_paths()['include'])
"""

def _nanobind_impl(rctx):
    workspace = rctx.path(Label("//:WORKSPACE")).dirname
    python = workspace.get_child(rctx.attr.venv).get_child("bin").get_child("python")
    if not python.exists:
        fail("no Python at {}: run `make setup` first".format(python))
    result = rctx.execute([str(python), "-c", _QUERY])
    if result.return_code != 0:
        fail("nanobind is not installed in {}: {}".format(python, result.stderr))
    nanobind_dir, include_dir = result.stdout.strip().split("\n")
    rctx.symlink(nanobind_dir, "nanobind")
    rctx.symlink(include_dir, "python_include")
    rctx.file("WORKSPACE", 'workspace(name = "{}")\n'.format(rctx.name))
    rctx.file("BUILD.bazel", _BUILD)

nanobind_repository = repository_rule(
    implementation = _nanobind_impl,
    attrs = {"venv": attr.string(default = ".venv")},
    local = True,
)
