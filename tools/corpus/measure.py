"""How closely our loader agrees with Istio on Istio's own YAML: accept and refuse rates.

    PYTHONPATH=. .venv/bin/python -m tools.corpus.measure DIR [DIR ...] [--map-versions] [-v]

Each DIR is a checkout (or a part of one) of istio/istio or istio/api; see corpus.py for what
is read and how each document's expected verdict is decided. Prints, for the documents Istio
accepts, the share we accept, and for those Istio refuses, the share we refuse; `-v` lists
every disagreement with our message. Kinds we do not serve (EnvoyFilter, Telemetry, ...) and
documents at an API version we do not serve are counted apart, not as disagreements;
`--map-versions` reads every served kind at the version we serve (e.g. networking v1 as
v1alpha3: Istio's versions of a kind share one schema), to measure validation alone.
An exception other than LoadError is a crash and always listed.
"""

from __future__ import annotations

import argparse
import collections
import pathlib
import sys
import traceback
from typing import Any

from pkg.config import loader
from pkg.config.kinds import ALL, KindSet
from tools.corpus.corpus import Document, Expect, Skipped, documents


def _served_version(kinds: KindSet, group: str, kind: str) -> str | None:
    for schema in kinds:
        if schema.group == group and schema.kind == kind:
            return schema.api_version
    return None


def measure(roots: list[pathlib.Path], *, map_versions: bool, verbose: bool) -> dict:
    skipped = Skipped()
    tally: collections.Counter[str] = collections.Counter()
    disagreements: list[str] = []
    crashes: list[str] = []
    for root in roots:
        for doc in documents(root, skipped):
            outcome, detail = _judge(doc, map_versions=map_versions)
            tally[f"{doc.expect.value}:{outcome}"] += 1
            where = f"{root.name}/{doc.source} document {doc.index} ({doc.kind})"
            if outcome == "crash":
                crashes.append(f"{where}: {detail}")
            elif (doc.expect is Expect.VALID and outcome == "refused") or (
                doc.expect is Expect.INVALID and outcome == "accepted"
            ):
                disagreements.append(f"{where}: expected {doc.expect.value}, {outcome}: {detail}")
    report: dict[str, Any] = {"tally": dict(tally), "skipped": skipped.counts}
    _print(report)
    for line in crashes:
        print(f"CRASH {line}")
    if verbose:
        for line in disagreements:
            print(line)
    report["crashes"] = crashes
    report["disagreements"] = disagreements
    return report


def _judge(doc: Document, *, map_versions: bool) -> tuple[str, str]:
    group, _, _ = doc.api_version.partition("/")
    served = _served_version(ALL, group, doc.kind)
    if served is None:
        return "kind not served", ""
    data = doc.data
    if ALL.by_kind(doc.api_version, doc.kind) is None:  # a version of it the store does not serve
        if not map_versions:
            return "version not served", doc.api_version
        data = {**data, "apiVersion": served}
    try:
        loader.load_object(data, source=doc.source, index=doc.index)
    except loader.LoadError as error:
        return "refused", str(error).replace("\n", " | ")
    except Exception:  # a crash is what this tool exists to find; report it, go on
        return "crash", traceback.format_exc(limit=3).replace("\n", " | ")
    return "accepted", ""


def _print(report: dict) -> None:
    tally = report["tally"]
    for expect in Expect:
        judged = {k.split(":", 1)[1]: n for k, n in tally.items() if k.startswith(expect.value)}
        accepted, refused = judged.get("accepted", 0), judged.get("refused", 0)
        crashed = judged.get("crash", 0)
        total = accepted + refused + crashed
        good = accepted if expect is Expect.VALID else refused
        verb = "accepted" if expect is Expect.VALID else "refused"
        rate = f"{100 * good / total:.1f}%" if total else "n/a"
        apart = ", ".join(
            f"{n} {k}"
            for k, n in sorted(judged.items())
            if k not in ("accepted", "refused", "crash")
        )
        print(
            f"{expect.value} in Istio: {total} judged, {good} {verb} ({rate}), {crashed} crashes"
            + (f"; apart: {apart}" if apart else "")
        )
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(report["skipped"].items()))
    print(f"skipped: {skipped or 'nothing'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="+", type=pathlib.Path)
    parser.add_argument("--map-versions", action="store_true")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.roots, map_versions=args.map_versions, verbose=args.verbose)
    return 1 if report["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
