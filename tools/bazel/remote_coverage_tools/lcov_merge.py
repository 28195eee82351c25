"""Merge lcov tracefiles: the offline stand-in for Bazel's coverage output generator.

Bazel calls it two ways:
  per test:   --coverage_dir=DIR --output_file=OUT   (merge every *.dat under DIR)
  per build:  --reports_file=LIST --output_file=OUT  (merge the files named in LIST)
Line and function hit counts of the same source file are added together.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys


def parse(text: str) -> dict[str, dict[str, collections.Counter]]:
    """Tracefile text -> {source: {"DA": Counter(line -> hits), "FNDA": Counter(fn -> hits)}}."""
    records: dict[str, dict[str, collections.Counter]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("SF:"):
            current = records.setdefault(
                line[3:], {"DA": collections.Counter(), "FNDA": collections.Counter()}
            )
        elif current is not None and line.startswith("DA:"):
            number, hits = line[3:].split(",")[:2]
            current["DA"][int(number)] += int(hits)
        elif current is not None and line.startswith("FNDA:"):
            hits, name = line[5:].split(",", 1)
            current["FNDA"][name] += int(hits)
        elif line == "end_of_record":
            current = None
    return records


def merge(texts: list[str]) -> str:
    merged: dict[str, dict[str, collections.Counter]] = {}
    for text in texts:
        for source, counts in parse(text).items():
            into = merged.setdefault(
                source, {"DA": collections.Counter(), "FNDA": collections.Counter()}
            )
            into["DA"].update(counts["DA"])
            into["FNDA"].update(counts["FNDA"])
    out = []
    for source in sorted(merged):
        lines = merged[source]["DA"]
        functions = merged[source]["FNDA"]
        out.append(f"SF:{source}")
        out.extend(f"FNDA:{hits},{name}" for name, hits in sorted(functions.items()))
        out.extend(f"DA:{number},{hits}" for number, hits in sorted(lines.items()))
        out.append(f"LH:{sum(1 for hits in lines.values() if hits)}")
        out.append(f"LF:{len(lines)}")
        out.append("end_of_record")
    return "\n".join(out) + ("\n" if out else "")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--coverage_dir")
    parser.add_argument("--reports_file")
    parser.add_argument("--output_file", required=True)
    args, _ = parser.parse_known_args(argv)
    if args.reports_file:
        listed = pathlib.Path(args.reports_file).read_text().split()
        paths = [pathlib.Path(p) for p in listed]
    elif args.coverage_dir:
        paths = sorted(pathlib.Path(args.coverage_dir).rglob("*.dat"))
    else:
        parser.error("one of --coverage_dir or --reports_file is required")
    texts = [p.read_text() for p in paths if p.is_file()]
    pathlib.Path(args.output_file).write_text(merge(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
