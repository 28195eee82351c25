"""py_pytest: a py_test that runs its test file under pytest."""

def py_pytest(name, srcs, deps = [], data = [], **kwargs):
    """One test file, run by pytest, as `bazel test` and plain `pytest` both would.

    Args:
      name: target name, conventionally the file name without `.py`.
      srcs: the test file first, then any helpers it imports.
      deps: libraries the test imports.
      data: files the test reads at run time.
      **kwargs: passed to py_test (size, small by default; tags; timeout; ...).
    """
    runner = "//tools/pytest:runner.py"
    kwargs.setdefault("size", "small")
    native.py_test(
        name = name,
        srcs = srcs + [runner],
        main = runner,
        args = ["$(location {})".format(srcs[0])] + kwargs.pop("args", []),
        deps = deps,
        data = data,
        python_version = "PY3",
        **kwargs
    )
