"""The lcov merger behind `@remote_coverage_tools`: hit counts of one source add up."""

import importlib.util
import os
import pathlib

_CANDIDATES = [
    # plain pytest: beside this file
    pathlib.Path(__file__).parent / "remote_coverage_tools" / "lcov_merge.py",
    # bazel test: the external repository in the runfiles tree
    pathlib.Path(os.environ.get("TEST_SRCDIR", "/nonexistent"))
    / "remote_coverage_tools"
    / "lcov_merge.py",
]
_spec = importlib.util.spec_from_file_location(
    "lcov_merge", next(p for p in _CANDIDATES if p.exists())
)
lcov_merge = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lcov_merge)

A = "SF:a.py\nFNDA:1,f\nDA:1,1\nDA:2,0\nend_of_record\n"
B = "SF:a.py\nFNDA:2,f\nDA:2,3\nend_of_record\nSF:b.py\nDA:1,0\nend_of_record\n"


def test_merge_adds_hits_per_line_and_function():
    merged = lcov_merge.merge([A, B])
    assert merged == (
        "SF:a.py\nFNDA:3,f\nDA:1,1\nDA:2,3\nLH:2\nLF:2\nend_of_record\n"
        "SF:b.py\nDA:1,0\nLH:0\nLF:1\nend_of_record\n"
    )


def test_main_reads_a_coverage_dir(tmp_path: pathlib.Path):
    (tmp_path / "one.dat").write_text(A)
    (tmp_path / "two.dat").write_text(B)
    out = tmp_path / "out.dat"
    assert lcov_merge.main([f"--coverage_dir={tmp_path}", f"--output_file={out}"]) == 0
    assert "DA:2,3" in out.read_text()
