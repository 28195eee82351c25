"""Benchmark: how fast the broker answers a platform (see broker_bench.py).

    PYTHONPATH=. .venv/bin/python tools/bench/broker_ops.py [--cycles 50] [--workers 4]
    bazel run //tools/bench:broker_ops

Run as a script, Python puts this folder first on sys.path, where security.py (a benchmark)
would shadow the `security` package the broker's test support imports; so the folder leaves
sys.path before the benchmark is imported.
"""

import pathlib
import sys

if __name__ == "__main__":
    here = pathlib.Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != here]
    from tools.bench import broker_bench

    sys.exit(broker_bench.main())
