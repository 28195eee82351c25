"""The first check of any document: every value must be a JSON value, as Kubernetes stores it.

Documents come from YAML (pkg/config/yamlstream) and from JSON request bodies; either can hold
what no later stage may see: values YAML could not construct, NaN and infinities, integers too
large for a double (Python ints have no bound; formatting one of 5000 digits raises), strings
that are not Unicode, and nesting deeper than the recursive checks after this one can follow.
This walk is iterative, so it finds all of these at any depth without recursing itself.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from pkg.config.validation.result import FieldPath, ValidationResult
from pkg.config.yamlstream import MAX_DEPTH, Invalid

MAX_PROBLEMS = 20  # a document of a million NaNs gets a readable refusal
_DOUBLE_BITS = sys.float_info.max_exp  # ints of more bits do not fit a double


def check_json_value(document: Any, out: ValidationResult) -> None:
    """Adds a problem for every value of `document` that is not plain JSON."""
    found = 0
    stack: list[tuple[Any, FieldPath, int]] = [(document, FieldPath(""), 0)]
    while stack:
        value, path, depth = stack.pop()
        problem = _problem(value)
        if problem is None and depth > MAX_DEPTH and isinstance(value, dict | list):
            problem = f"nested deeper than {MAX_DEPTH} levels"
        if problem is not None:
            found += 1
            if found <= MAX_PROBLEMS:
                out.error(path, problem)
            continue
        if isinstance(value, dict):
            children = []
            for key, item in value.items():
                key_problem = _key_problem(key)
                if key_problem is not None:
                    found += 1
                    if found <= MAX_PROBLEMS:
                        out.error(path, key_problem)
                    continue
                children.append((item, path / str(key), depth + 1))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(
                (item, path / i, depth + 1) for i, item in reversed(list(enumerate(value)))
            )
    if found > MAX_PROBLEMS:
        out.error("", f"and {found - MAX_PROBLEMS} more values like these")


def _problem(value: Any) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    if isinstance(value, str):
        return None if _is_unicode(value) else "is not valid Unicode (a lone surrogate)"
    if isinstance(value, int):
        bits = value.bit_length()
        return None if bits <= _DOUBLE_BITS else f"an integer of {bits} bits is too large"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{value} is not a JSON number"
    if isinstance(value, Invalid):
        return value.describe()
    return f"a {type(value).__name__} has no JSON form"


def _key_problem(key: Any) -> str | None:
    if isinstance(key, Invalid):
        return f"key {key.describe()}"
    if isinstance(key, str):
        return None if _is_unicode(key) else "a key is not valid Unicode (a lone surrogate)"
    if key is None or isinstance(key, bool):
        return None
    if isinstance(key, int | float) and _problem(key) is None:
        return None  # a YAML `80:` key; JSON has it as the string "80"
    return f"a key that is a {type(key).__name__} has no JSON form"


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
