"""Reading a handler's params: the plain dict a `handler` resource carries, into typed values.

A handler's params reach the builder as JSON-like data (`json_format.MessageToDict` of a
Struct, merged over the adapter's `default_params`), so numbers may arrive as floats
(`5000.0`) and durations as Go-style strings (`10s`, `500ms`, `1h30m`), exactly as users
write them in Istio's YAML. `ParamReader` reads one object, field by field, and records a
`ConfigError` with the full field path (`quotas[0].overrides[1].maxAmount`) for every
problem instead of stopping at the first, as Mixer's `ConfigErrors` did. Keys are the
camelCase names of Istio's YAML; a snake_case key gets an error that names the right one.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mixer.adapter.api import ConfigError
from pkg.config.validation.structure import parse_duration, type_name

_SECONDS = re.compile(r"^(-?)(\d+)(?:\.(\d{1,9}))?s$")


def duration_from_text(text: str) -> datetime.timedelta | None:
    """A Go-style duration ('1h30m', '0.5s', '30ms', '0') as a timedelta; None if malformed."""
    if text.strip() == "0":
        return datetime.timedelta(0)
    seconds = parse_duration(text.strip())
    if seconds is None:
        return None
    match = _SECONDS.match(seconds)
    if match is None:  # parse_duration always answers in this form
        return None
    sign, whole, fraction = match.groups()
    micros = int(whole) * 1_000_000 + int((fraction or "").ljust(9, "0")[:6] or 0)
    return datetime.timedelta(microseconds=-micros if sign else micros)


def format_duration(value: datetime.timedelta) -> str:
    """A timedelta the way users write it (`1s`, `1.5s`, `250ms`), for messages."""
    micros = value // datetime.timedelta(microseconds=1)
    if micros % 1_000_000 == 0:
        return f"{micros // 1_000_000}s"
    if micros % 1000 == 0 and abs(micros) < 1_000_000:
        return f"{micros // 1000}ms"
    return f"{micros / 1_000_000:g}s"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


class ParamReader:
    """Reads the fields of one params object; problems go to a shared error list.

    Each getter takes the field's camelCase name and a default, returns the default when the
    field is absent, null or malformed (recording why), and marks the field as read, so
    `finish()` can report the fields nobody read as unknown.
    """

    def __init__(
        self, params: Any, *, path: str = "", errors: list[ConfigError] | None = None
    ) -> None:
        self.path = path
        self.errors: list[ConfigError] = [] if errors is None else errors
        self._read: set[str] = set()
        if params is None:
            params = {}
        if not isinstance(params, Mapping):
            self.errors.append(
                ConfigError(path or "params", f"expected an object, got {type_name(params)}")
            )
            params = {}
        self._params: Mapping[str, Any] = params

    # Paths and errors.

    def field(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> None:
        self.errors.append(ConfigError(self.field(name), message))

    def has(self, name: str) -> bool:
        return self._params.get(name) is not None

    def _take(self, name: str) -> Any:
        self._read.add(name)
        return self._params.get(name)

    def finish(self) -> None:
        """Records an error for every field no getter read."""
        for key in self._params:
            if key in self._read:
                continue
            hint = ""
            if isinstance(key, str) and _camel(key) in self._read:
                hint = f" (did you mean {_camel(key)}?)"
            elif self._read:
                hint = f" (known: {', '.join(sorted(self._read))})"
            self.error(str(key), f"unknown field{hint}")

    # Scalars.

    def string(self, name: str, default: str = "") -> str:
        value = self._take(name)
        if value is None:
            return default
        if not isinstance(value, str):
            self.error(name, f"expected a string, got {type_name(value)}")
            return default
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._take(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(name, f"expected true or false, got {type_name(value)}")
            return default
        return value

    def integer(self, name: str, default: int = 0) -> int:
        value = self._take(name)
        if value is None:
            return default
        # Struct numbers are doubles (5000 arrives as 5000.0); proto3 JSON writes int64 as a
        # string ("5000"). Both are integers to a user.
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        self.error(name, f"expected an integer, got {_show(value)}")
        return default

    def duration(self, name: str, default: datetime.timedelta) -> datetime.timedelta:
        value = self._take(name)
        if value is None:
            return default
        if isinstance(value, datetime.timedelta):
            return value
        if isinstance(value, str):
            parsed = duration_from_text(value)
            if parsed is not None:
                return parsed
        self.error(name, f"expected a duration such as 10s or 500ms, got {_show(value)}")
        return default

    def optional_duration(self, name: str) -> datetime.timedelta | None:
        if not self.has(name):
            self._take(name)
            return None
        return self.duration(name, datetime.timedelta(0))

    def enum(self, name: str, choices: Sequence[str], default: str) -> str:
        """An enum by name (`ROLLING_WINDOW`) or, as protobuf allows, by number (`1`)."""
        value = self._take(name)
        if value is None:
            return default
        if isinstance(value, str) and value in choices:
            return value
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and float(value).is_integer() and 0 <= int(value) < len(choices):
            return choices[int(value)]
        self.error(name, f"expected one of {', '.join(choices)}, got {_show(value)}")
        return default

    # Collections.

    def strings(self, name: str) -> list[str]:
        value = self._take(name)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            self.error(name, f"expected a list of strings, got {type_name(value)}")
            return []
        out = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                out.append(item)
            else:
                self.error(f"{name}[{index}]", f"expected a string, got {type_name(item)}")
        return out

    def string_map(self, name: str) -> dict[str, str]:
        """A map of strings; numbers and booleans are taken as the text YAML shows for them."""
        value = self._take(name)
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            self.error(name, f"expected a map of strings, got {type_name(value)}")
            return {}
        out = {}
        for key, item in value.items():
            text = scalar_text(item)
            if text is None:
                self.error(f"{name}.{key}", f"expected a string, got {type_name(item)}")
            else:
                out[str(key)] = text
        return out

    def object(self, name: str) -> ParamReader:
        return ParamReader(self._take(name), path=self.field(name), errors=self.errors)

    def objects(self, name: str) -> list[ParamReader]:
        value = self._take(name)
        if value is None:
            return []
        if not isinstance(value, list | tuple):
            self.error(name, f"expected a list, got {type_name(value)}")
            return []
        return [
            ParamReader(item, path=f"{self.field(name)}[{index}]", errors=self.errors)
            for index, item in enumerate(value)
        ]


def scalar_text(value: Any) -> str | None:
    """The text of a scalar as YAML shows it (`true`, `200`, `1.5`); None for lists and maps."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str | int | float) else type_name(value)
