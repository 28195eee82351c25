"""The functions a template can call: Go's builtins and the part of Sprig that Helm charts
and Istio's injection templates use, with Sprig's semantics (argument order, what counts as
empty, how values turn into strings)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from pkg.gotemplate.values import (
    Enum,
    ExecError,
    StrMap,
    Struct,
    format_float,
    go_quote,
    to_string,
    truth,
    type_name,
)

Funcs = dict[str, Callable[..., Any]]


# --- Go's builtins ------------------------------------------------------------------------
def _comparable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.number
    return value


def eq(first: Any, *others: Any) -> bool:
    if not others:
        raise ExecError("missing argument for comparison")
    a = _comparable(first)
    for other in others:
        b = _comparable(other)
        if _kind(a) != _kind(b) and None not in (a, b):
            raise ExecError(
                f"incompatible types for comparison: {type_name(first)} and {type_name(other)}"
            )
        if a == b:
            return True
    return False


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return type(value).__name__


def ne(a: Any, b: Any) -> bool:
    return not eq(a, b)


def _ordered(a: Any, b: Any) -> tuple[Any, Any]:
    a, b = _comparable(a), _comparable(b)
    if _kind(a) != _kind(b) or _kind(a) not in ("number", "string"):
        raise ExecError(f"incompatible types for comparison: {type_name(a)} and {type_name(b)}")
    return a, b


def lt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x < y)


def le(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x <= y)


def gt(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x > y)


def ge(a: Any, b: Any) -> bool:
    x, y = _ordered(a, b)
    return bool(x >= y)


def not_(value: Any) -> bool:
    return not truth(value)


def length(value: Any) -> int:
    if isinstance(value, (str, list, tuple, dict)):
        return len(value)
    raise ExecError(f"len of type {type_name(value)}")


def index(item: Any, *keys: Any) -> Any:
    for key in keys:
        if item is None:
            raise ExecError("index of untyped nil")
        if isinstance(item, Mapping):
            if not isinstance(key, str):
                raise ExecError(f"value has type {type_name(key)}; should be string")
            item = item.get(key, "" if isinstance(item, StrMap) else None)
        elif isinstance(item, (list, tuple, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise ExecError(f"cannot index slice/array with type {type_name(key)}")
            if not 0 <= key < len(item):
                raise ExecError(f"index out of range: {key}")
            item = item[key]
        else:
            raise ExecError(f"can't index item of type {type_name(item)}")
    return item


def slice_(item: Any, *bounds: int) -> Any:
    if not isinstance(item, (list, str)):
        raise ExecError(f"can't slice item of type {type_name(item)}")
    if len(bounds) > 2:
        raise ExecError("too many slice indexes")
    start = bounds[0] if bounds else 0
    end = bounds[1] if len(bounds) > 1 else len(item)
    if not 0 <= start <= end <= len(item):
        raise ExecError(f"slice bounds out of range [{start}:{end}]")
    return item[start:end]


def go_print(*args: Any) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out: list[str] = []
    for i, arg in enumerate(args):
        if i and not isinstance(arg, str) and not isinstance(args[i - 1], str):
            out.append(" ")
        out.append(_sprint(arg))
    return "".join(out)


def go_println(*args: Any) -> str:
    return " ".join(_sprint(a) for a in args) + "\n"


def _sprint(value: Any) -> str:
    return "<nil>" if value is None else to_string(value)


_VERB = re.compile(r"%([-+# 0]*)(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def printf(template: str, *args: Any) -> str:
    """fmt.Sprintf for the verbs templates use: %s %v %d %t %q %f %x %%."""
    values = list(args)
    out: list[str] = []
    position = 0
    for match in _VERB.finditer(template):
        out.append(template[position : match.start()])
        position = match.end()
        flags, width, precision, verb = match.groups()
        if verb == "%":
            out.append("%")
            continue
        if not values:
            out.append(f"%!{verb}(MISSING)")
            continue
        value = values.pop(0)
        text = _format_verb(verb, value, precision)
        if width and width != "*":
            text = (
                text.ljust(int(width))
                if "-" in flags
                else text.rjust(int(width), "0" if "0" in flags and verb in "dfx" else " ")
            )
        out.append(text)
    out.append(template[position:])
    for extra in values:
        out.append(f"%!(EXTRA {type_name(extra)}={_sprint(extra)})")
    return "".join(out)


def _format_verb(verb: str, value: Any, precision: str | None) -> str:
    if verb in "sv":
        return _sprint(value)
    if verb == "t":
        return (
            ("true" if value else "false")
            if isinstance(value, bool)
            else f"%!t({type_name(value)}={_sprint(value)})"
        )
    if verb == "d":
        if isinstance(value, Enum):
            return str(value.number)
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return f"%!d({type_name(value)}={_sprint(value)})"
    if verb == "q":
        return go_quote(_sprint(value))
    if verb == "f":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return f"{float(value):.{int(precision) if precision else 6}f}"
        return f"%!f({type_name(value)}={_sprint(value)})"
    if verb == "x":
        if isinstance(value, int) and not isinstance(value, bool):
            return format(value, "x")
        return _sprint(value).encode().hex()
    return f"%!{verb}({type_name(value)}={_sprint(value)})"


# --- Sprig --------------------------------------------------------------------------------
def strval(value: Any) -> str:
    """Sprig's strval: strings as they are, anything else as %v prints it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    return _sprint(value)


def empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, Struct):
        return False
    return not truth(value)


def default(fallback: Any, *given: Any) -> Any:
    if not given or empty(given[0]):
        return fallback
    return given[0]


def quote(*values: Any) -> str:
    return " ".join(go_quote(strval(v)) for v in values if v is not None)


def squote(*values: Any) -> str:
    return " ".join(f"'{strval(v)}'" for v in values if v is not None)


def trunc(count: int, text: str) -> str:
    if count < 0 and len(text) + count > 0:
        return text[len(text) + count :]
    if count >= 0 and len(text) > count:
        return text[:count]
    return text


def trim_all(cutset: str, text: str) -> str:
    return text.strip(cutset)


def strslice(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [strval(v) for v in value if v is not None]
    return [strval(value)]


def join(separator: str, value: Any) -> str:
    return separator.join(strslice(value))


def list_(*values: Any) -> list[Any]:
    return list(values)


def append(values: Any, value: Any) -> list[Any]:
    if values is None:
        return [value]
    if not isinstance(values, (list, tuple)):
        raise ExecError(f"Cannot push on type {type_name(values)}")
    return [*values, value]


def sprig_indent(spaces: int, text: str) -> str:
    pad = " " * spaces
    return pad + text.replace("\n", "\n" + pad)


def nindent(spaces: int, text: str) -> str:
    return "\n" + sprig_indent(spaces, text)


def has_key(mapping: Any, key: str) -> bool:
    return isinstance(mapping, Mapping) and key in mapping


def dict_(*pairs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i in range(0, len(pairs), 2):
        out[strval(pairs[i])] = pairs[i + 1] if i + 1 < len(pairs) else ""
    return out


def set_(mapping: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    mapping[key] = value
    return mapping


def pick(mapping: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    return {k: mapping[k] for k in keys if k in mapping}


def ternary(yes: Any, no: Any, condition: Any) -> Any:
    return yes if truth(condition) else no


def coalesce(*values: Any) -> Any:
    for value in values:
        if not empty(value):
            return value
    return None


def plain(value: Any) -> Any:
    """A value as JSON (and YAML) encoders see it: Go's wrappers unwrapped."""
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, Struct):
        to_plain = getattr(value, "plain", None)
        return to_plain() if to_plain else {}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def to_json(value: Any) -> str:
    return go_json(plain(value))


def to_pretty_json(value: Any) -> str:
    return go_json(plain(value), indent=2)


def go_json(value: Any, indent: int | None = None) -> str:
    """encoding/json's output: sorted map keys, <, > and & escaped, no spaces."""
    text = json.dumps(
        value,
        sort_keys=isinstance(value, dict) and not isinstance(value, _Ordered),
        indent=indent,
        separators=(",", ": ") if indent else (",", ":"),
        ensure_ascii=False,
        default=_json_default,
    )
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class _Ordered(dict[str, Any]):
    """A JSON object whose key order is a Go struct's field order, not sorted."""


def ordered(pairs: Mapping[str, Any]) -> dict[str, Any]:
    return _Ordered(pairs)


def _json_default(value: Any) -> Any:
    if isinstance(value, float):
        return format_float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_yaml(value: Any) -> str:
    """sigs.k8s.io/yaml's Marshal: block style, sorted keys, a trailing newline."""
    data = plain(value)
    if data is None:
        return "null\n"
    return yaml.safe_dump(
        data, default_flow_style=False, sort_keys=True, allow_unicode=True, width=1 << 20
    )


def from_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return {}


BUILTINS: Funcs = {
    "eq": eq, "ne": ne, "lt": lt, "le": le, "gt": gt, "ge": ge, "not": not_, "len": length,
    "index": index, "slice": slice_, "print": go_print, "printf": printf, "println": go_println,
}  # fmt: skip

SPRIG: Funcs = {
    "default": default, "empty": empty, "quote": quote, "squote": squote, "trunc": trunc,
    "trimAll": trim_all, "trim": lambda s: s.strip(), "trimPrefix": lambda p, s: s.removeprefix(p),
    "trimSuffix": lambda p, s: s.removesuffix(p), "join": join, "list": list_, "append": append,
    "push": append, "indent": sprig_indent, "nindent": nindent, "hasKey": has_key, "dict": dict_,
    "set": set_, "pick": pick, "ternary": ternary, "coalesce": coalesce, "toJson": to_json,
    "toPrettyJson": to_pretty_json, "toYaml": to_yaml, "fromJson": from_json, "lower": str.lower,
    "upper": str.upper, "toString": strval, "contains": lambda sub, s: sub in s,
    "hasPrefix": lambda p, s: s.startswith(p), "hasSuffix": lambda p, s: s.endswith(p),
    "replace": lambda old, new, s: s.replace(old, new), "split": lambda sep, s: {f"_{i}": v for i, v in enumerate(s.split(sep))},
    "splitList": lambda sep, s: s.split(sep), "repeat": lambda n, s: s * n,
}  # fmt: skip
