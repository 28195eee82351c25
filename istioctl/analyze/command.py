"""`istioctl analyze`: read the config (the live store, with the files applied over it),
run every analyzer, print the messages, and exit as Istio's does.

Exit status, as Istio's istioctl: 79 when a message reaches --failure-threshold (Error by
default), else 65 when an input document could not be parsed (unless --ignore-unknown),
else 0; usage errors 64, a store that cannot be reached 1. Only the log format sets 79 and
65, as in Istio (JSON and YAML output are for machines that judge for themselves).
"""

from __future__ import annotations

import argparse
import os
import sys

from istioctl import target
from istioctl.analyze import diag, source
from istioctl.analyze.analyzers.all import ANALYZERS
from istioctl.analyze.analyzers.base import Context
from istioctl.analyze.model import Snapshot

EXIT_ANALYZER_FOUND_ISSUES = 79
EXIT_DATA_ERROR = 65


def analyze(args: argparse.Namespace) -> int:
    if args.list_analyzers:
        sys.stdout.write(list_analyzers())
        return 0
    try:
        suppressions = [diag.Suppression.parse(s) for s in args.suppress]
    except ValueError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    known = diag.codes()
    for suppression in suppressions:
        if suppression.code not in known:
            print(
                f"Warning: Supplied message code '{suppression.code}' is an unknown message "
                "code and will not have any effect.",
                file=sys.stderr,
            )
    selected = None if args.all_namespaces else target.namespace(args)
    where = "all namespaces" if selected is None else f"namespace: {selected}"
    try:
        files, skipped = source.gather(args.files, recursive=args.recursive, stdin=sys.stdin)
    except OSError as error:
        print(f"Error: {error.filename}: {error.strerror}", file=sys.stderr)
        return 1
    for name in skipped:
        print(
            f"Skipping file {name}, recognized file extensions are: "
            f"[{' '.join(source.EXTENSIONS)}]",
            file=sys.stderr,
        )
    read = source.read_files(files, selected or "default")
    stored = []
    if args.use_kube:
        with target.store_client(args, timeout=args.timeout) as client:
            stored = source.read_store(client)
    entries = source.merge(stored, read.entries)

    snapshot = Snapshot(entries, istio_namespace=args.istio_namespace)
    context = Context(snapshot)
    for analyzer in ANALYZERS:
        analyzer.run(context)
    messages = [
        m
        for m in diag.sorted_unique(context.messages)
        if _in_namespace(m, selected) and not diag.suppressed(m, suppressions)
    ]

    if args.verbose:
        print(f"Analyzed resources in {where}", file=sys.stderr)
        print("Executed analyzers:", file=sys.stderr)
        for analyzer in ANALYZERS:
            print(f"\t {analyzer.name}", file=sys.stderr)
        print(file=sys.stderr)
    if read.parse_errors and not args.ignore_unknown:
        count = len(read.parse_errors)
        listed = "".join(f"\t* {e}\n" for e in read.parse_errors)
        noun = "error" if count == 1 else "errors"
        print(f"Error(s) adding files: {count} {noun} occurred:\n{listed}", file=sys.stderr)

    threshold = diag.Level.parse(args.output_threshold)
    shown = [m for m in messages if m.type.level >= threshold]
    color = _color(args.color)
    if args.output != "log" or shown:
        sys.stdout.write(diag.render_all(shown, args.output, color=color))
    if not shown and args.output == "log":
        if read.parse_errors and not args.ignore_unknown:
            count = len(read.parse_errors)
            print(
                f"No validation issues found when analyzing {where} "
                f"(but {count} {'file' if count == 1 else 'files'} could not be parsed).",
                file=sys.stderr,
            )
        else:
            print(f"\u2714 No validation issues found when analyzing {where}.", file=sys.stderr)

    if args.output != "log":
        return 0
    failure = diag.Level.parse(args.failure_threshold)
    if any(m.type.level >= failure for m in messages):
        print(
            f"Error: Analyzers found issues when analyzing {where}.\n"
            f"See {diag.DOCS} for more information about causes and resolutions.",
            file=sys.stderr,
        )
        return EXIT_ANALYZER_FOUND_ISSUES
    if read.parse_errors and not args.ignore_unknown:
        print("Error: Some files couldn't be parsed.", file=sys.stderr)
        return EXIT_DATA_ERROR
    return 0


def list_analyzers() -> str:
    lines = []
    for analyzer in sorted(ANALYZERS, key=lambda a: a.name):
        lines.append(f"* {analyzer.name}:\n    {analyzer.description}\n")
    return "".join(lines)


def _in_namespace(message: diag.Message, namespace: str | None) -> bool:
    if namespace is None or message.origin is None:
        return True
    origin = message.origin
    return (origin.namespace or origin.name) == namespace  # a Namespace by its own name


def _color(flag: bool | None) -> bool:
    if flag is not None:
        return flag
    return sys.stdout.isatty() and os.environ.get("TERM", "").lower() != "dumb"
