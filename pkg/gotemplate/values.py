"""Go values as a template sees them, and how Go prints them.

Plain Python values stand for Go's: None is nil (and a missing map entry, which Go prints
as `<no value>`), bool, int, float (float64, printed as Go's %v prints it), str, list (a
slice), dict (a map[string]any: a missing key is nil). Three wrappers give Go's typed
behaviour where a template relies on it:

- `StrMap`: a map[string]string, whose missing keys read as "" (labels, annotations);
- `Struct`: anything with fields and niladic methods (`.Name`, `.GetValue`); its `field`
  raises `FieldError` for a name the value does not have, as Go refuses one;
- `Enum`: a protobuf enum, printed (and `.String`ed) as its name, true when non-zero.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class ExecError(ValueError):
    """A template failed while it ran; the message names the template and the line."""


class FieldError(ExecError):
    pass


class StrMap(dict[str, str]):
    """map[string]string: indexing a missing key gives the zero value, ""."""


class Struct:
    """A Go struct (or pointer to one): subclasses answer `field(name)`."""

    def field(self, name: str) -> Any:
        raise FieldError(f"can't evaluate field {name} in type {type(self).__name__}")

    def truth(self) -> bool:
        return True

    def go_string(self) -> str:
        return "{}"


class Enum:
    __slots__ = ("name", "number")

    def __init__(self, name: str, number: int) -> None:
        self.name = name
        self.number = number

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Enum):
            return self.number == other.number
        if isinstance(other, int) and not isinstance(other, bool):
            return self.number == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.number)

    def __repr__(self) -> str:
        return f"Enum({self.name})"


def truth(value: Any) -> bool:
    """Go template truth: false, 0, nil, and empty strings, slices and maps are false."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, (str, list, tuple, dict)):
        return len(value) > 0
    if isinstance(value, Enum):
        return value.number != 0
    if isinstance(value, Struct):
        return value.truth()
    return True


def format_float(value: float) -> str:
    """Go's %v of a float64 (strconv 'g' with the shortest repr, exponent when large)."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        digits = exponent.lstrip("+-").rjust(2, "0")
        return f"{mantissa}e{sign}{digits}"
    return text


def to_string(value: Any) -> str:
    """fmt.Sprint of one value, as `{{ value }}` prints it."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_inner(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_inner(value[k])}" for k in sorted(value)) + "]"
    if isinstance(value, Struct):
        return value.go_string()
    return str(value)


def _inner(value: Any) -> str:
    return "<nil>" if value is None else to_string(value)


def go_quote(text: str) -> str:
    """strconv.Quote: a double-quoted Go string literal (printable Unicode kept as is)."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\a":
            out.append("\\a")
        elif ch == "\b":
            out.append("\\b")
        elif ch == "\f":
            out.append("\\f")
        elif ch == "\v":
            out.append("\\v")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def type_name(value: Any) -> str:
    if value is None:
        return "nil"
    return {bool: "bool", int: "int", float: "float64", str: "string", list: "[]interface {}",
            dict: "map[string]interface {}", StrMap: "map[string]string"}.get(type(value), type(value).__name__)  # fmt: skip
