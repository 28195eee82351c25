"""`istioctl manifest generate`: the install's objects as one YAML stream."""

from __future__ import annotations

import argparse
import pathlib
import sys

from manifests import generate as manifests


def values(args: argparse.Namespace) -> dict:
    return manifests.values_from([pathlib.Path(f) for f in args.filename], args.set)


def generate(args: argparse.Namespace) -> int:
    try:
        objects = manifests.generate(values(args))
    except manifests.ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(manifests.to_yaml(objects))
    return 0
