"""The prometheus handler's params: parsed into `MetricSpec`s, every mistake a `ConfigError`.

Params arrive as the handler resource's `params` Struct turned into plain Python (so every
number is a float), in either spelling jsonpb accepts (`instanceName` or `instance_name`).
Istio's adapter checks almost nothing and fails at the first report; here each problem is
reported at config time with its field path, e.g. `metrics[2].buckets.exponentialBuckets.scale`.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mixer.adapter.api import ConfigError

DEFAULT_NAMESPACE = "istio"
# Prometheus' own default buckets (client_golang DefBuckets), used when a DISTRIBUTION
# names none; Istio's request_duration_seconds bounds happen to be the same.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A typo such as numFiniteBuckets: 80000000 must not allocate a huge list per series.
MAX_BUCKETS = 1000

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Istio's safeName: a metric name may be written with dots, slashes or spaces.
_NAME_REPLACEMENTS = str.maketrans({"/": "_", ".": "_", " ": "_", "-": None})

_PARAMS_FIELDS = {"metrics", "metricsExpirationPolicy"}
_METRIC_FIELDS = {
    "name",
    "instanceName",
    "kind",
    "labelNames",
    "buckets",
    "namespace",
    "description",
}
_EXPIRY_FIELDS = {"metricsExpiryDuration", "expiryCheckIntervalDuration"}


class Kind(enum.Enum):
    GAUGE = "GAUGE"
    COUNTER = "COUNTER"
    DISTRIBUTION = "DISTRIBUTION"


@dataclasses.dataclass(frozen=True)
class MetricSpec:
    """One exported metric: what it is called, which instance feeds it, and its shape."""

    name: str  # as configured after Istio's safeName, e.g. "requests_total"
    namespace: str  # "istio"
    instance_name: str  # as configured, e.g. "requestcount.instance.istio-system"
    kind: Kind
    label_names: tuple[str, ...]
    buckets: tuple[float, ...] = ()  # upper bounds, DISTRIBUTION only
    description: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.namespace}_{self.name}"

    @property
    def family_name(self) -> str:
        """The name Prometheus' client gives the family: a counter's without `_total`."""
        if self.kind is Kind.COUNTER and self.full_name.endswith("_total"):
            return self.full_name[: -len("_total")]
        return self.full_name

    @property
    def series_names(self) -> frozenset[str]:
        """Every name the exposition may use for this metric (what a registry checks)."""
        base = self.family_name
        suffixes = {
            Kind.COUNTER: ("", "_total", "_created"),
            Kind.GAUGE: ("",),
            Kind.DISTRIBUTION: ("", "_bucket", "_sum", "_count", "_created"),
        }[self.kind]
        return frozenset(base + suffix for suffix in suffixes)

    @property
    def shape(self) -> tuple[Kind, frozenset[str], tuple[float, ...]]:
        """What must agree for two handlers to share one time series family."""
        return (self.kind, frozenset(self.label_names), self.buckets)


def parse(params: Mapping[str, Any]) -> tuple[list[MetricSpec], list[ConfigError]]:
    """The metrics of a handler's params, and everything wrong with them."""
    errors: list[ConfigError] = []
    if not isinstance(params, Mapping):
        return [], [ConfigError("params", "must be a map")]
    _unknown_fields(params, _PARAMS_FIELDS, "", errors)
    _check_expiry(_field(params, "metricsExpirationPolicy"), errors)
    metrics = _field(params, "metrics")
    if metrics is None:
        return [], [*errors, ConfigError("metrics", "at least one metric is required")]
    if not isinstance(metrics, Sequence) or isinstance(metrics, str):
        return [], [*errors, ConfigError("metrics", "must be a list")]
    specs: list[MetricSpec] = []
    seen: dict[str, int] = {}  # series name -> index of the metric exporting it
    for index, raw in enumerate(metrics):
        path = f"metrics[{index}]"
        spec = _metric(raw, path, errors)
        if spec is None:
            continue
        # `requests_total` and `requests` are one counter family; a histogram `x` owns x_sum.
        clashes = sorted(spec.series_names & seen.keys())
        if clashes:
            errors.append(
                ConfigError(
                    f"{path}.name",
                    f"{spec.full_name!r} clashes with metrics[{seen[clashes[0]]}] "
                    f"(both export {clashes[0]})",
                )
            )
            continue
        seen.update(dict.fromkeys(spec.series_names, index))
        specs.append(spec)
    return specs, errors


def _metric(raw: Any, path: str, errors: list[ConfigError]) -> MetricSpec | None:
    if not isinstance(raw, Mapping):
        errors.append(ConfigError(path, "must be a map"))
        return None
    before = len(errors)
    _unknown_fields(raw, _METRIC_FIELDS, path, errors)

    instance_name = _field(raw, "instanceName")
    if not isinstance(instance_name, str) or not instance_name:
        errors.append(
            ConfigError(f"{path}.instanceName", "the instance feeding this metric is required")
        )
        instance_name = ""

    # Like Istio, an unnamed metric is named after its instance.
    name = _field(raw, "name") or instance_name
    if not isinstance(name, str):
        errors.append(ConfigError(f"{path}.name", "must be a string"))
        name = ""
    name = name.lstrip("/").translate(_NAME_REPLACEMENTS)

    namespace = _field(raw, "namespace") or DEFAULT_NAMESPACE
    if not isinstance(namespace, str):
        errors.append(ConfigError(f"{path}.namespace", "must be a string"))
        namespace = DEFAULT_NAMESPACE
    namespace = namespace.lstrip("/").translate(_NAME_REPLACEMENTS)
    if name and not _METRIC_NAME.match(f"{namespace}_{name}"):
        errors.append(
            ConfigError(
                f"{path}.name", f"{namespace}_{name!s} is not a valid Prometheus metric name"
            )
        )

    kind = _kind(_field(raw, "kind"), f"{path}.kind", errors)
    labels = _label_names(_field(raw, "labelNames"), kind, f"{path}.labelNames", errors)
    raw_buckets = _field(raw, "buckets")
    buckets: tuple[float, ...] = ()
    if kind is Kind.DISTRIBUTION:
        buckets = (
            DEFAULT_BUCKETS
            if raw_buckets is None
            else _buckets(raw_buckets, f"{path}.buckets", errors)
        )
    elif raw_buckets is not None and kind is not None:
        errors.append(
            ConfigError(f"{path}.buckets", f"only a DISTRIBUTION has buckets, not a {kind.value}")
        )

    description = _field(raw, "description") or ""
    if not isinstance(description, str):
        errors.append(ConfigError(f"{path}.description", "must be a string"))
        description = ""
    if len(errors) > before or kind is None:
        return None
    return MetricSpec(
        name=name,
        namespace=namespace,
        instance_name=instance_name,
        kind=kind,
        label_names=labels,
        buckets=buckets,
        description=description,
    )


def _kind(raw: Any, path: str, errors: list[ConfigError]) -> Kind | None:
    if raw is None:
        errors.append(ConfigError(path, "required: GAUGE, COUNTER or DISTRIBUTION"))
        return None
    try:
        return Kind(raw)
    except ValueError:
        errors.append(ConfigError(path, f"{raw!r} is not one of GAUGE, COUNTER, DISTRIBUTION"))
        return None


def _label_names(
    raw: Any, kind: Kind | None, path: str, errors: list[ConfigError]
) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        errors.append(ConfigError(path, "must be a list of label names"))
        return ()
    names: list[str] = []
    for index, label in enumerate(raw):
        where = f"{path}[{index}]"
        if not isinstance(label, str) or not label:
            errors.append(ConfigError(where, "a label name must be a non-empty string"))
        elif not _LABEL_NAME.match(label) or label.startswith("__"):
            errors.append(ConfigError(where, f"{label!r} is not a valid Prometheus label name"))
        elif kind is Kind.DISTRIBUTION and label == "le":
            errors.append(ConfigError(where, "'le' is reserved for histogram buckets"))
        elif label in names:
            errors.append(ConfigError(where, f"duplicate label name {label!r}"))
        else:
            names.append(label)
    return tuple(names)


def _buckets(raw: Any, path: str, errors: list[ConfigError]) -> tuple[float, ...]:
    if not isinstance(raw, Mapping):
        errors.append(ConfigError(path, "must be a map"))
        return ()
    given = [
        key
        for key in ("explicitBuckets", "exponentialBuckets", "linearBuckets")
        if _field(raw, key) is not None
    ]
    _unknown_fields(raw, {"explicitBuckets", "exponentialBuckets", "linearBuckets"}, path, errors)
    if len(given) != 1:
        errors.append(
            ConfigError(
                path, "set exactly one of explicitBuckets, exponentialBuckets, linearBuckets"
            )
        )
        return ()
    key = given[0]
    body = _field(raw, key)
    where = f"{path}.{key}"
    if not isinstance(body, Mapping):
        errors.append(ConfigError(where, "must be a map"))
        return ()
    if key == "explicitBuckets":
        _unknown_fields(body, {"bounds"}, where, errors)
        return _explicit(_field(body, "bounds"), f"{where}.bounds", errors)
    if key == "exponentialBuckets":
        _unknown_fields(body, {"numFiniteBuckets", "scale", "growthFactor"}, where, errors)
        count = _count(_field(body, "numFiniteBuckets"), f"{where}.numFiniteBuckets", errors)
        scale = _number(_field(body, "scale"), f"{where}.scale", errors)
        growth = _number(_field(body, "growthFactor"), f"{where}.growthFactor", errors)
        if scale is not None and scale <= 0:
            errors.append(ConfigError(f"{where}.scale", "must be greater than 0"))
        if growth is not None and growth <= 1:
            errors.append(ConfigError(f"{where}.growthFactor", "must be greater than 1"))
        if count is None or scale is None or growth is None or scale <= 0 or growth <= 1:
            return ()
        # N finite buckets have N+1 bounds: scale * growthFactor^i for i in 0..N
        # (Stackdriver's definition; Istio passes N+1 to client_golang's ExponentialBuckets).
        return tuple(scale * growth**i for i in range(count + 1))
    _unknown_fields(body, {"numFiniteBuckets", "width", "offset"}, where, errors)
    count = _count(_field(body, "numFiniteBuckets"), f"{where}.numFiniteBuckets", errors)
    width = _number(_field(body, "width"), f"{where}.width", errors)
    offset_raw = _field(body, "offset")
    offset = 0.0 if offset_raw is None else _number(offset_raw, f"{where}.offset", errors)
    if width is not None and width <= 0:
        errors.append(ConfigError(f"{where}.width", "must be greater than 0"))
    if count is None or width is None or offset is None or width <= 0:
        return ()
    return tuple(offset + width * i for i in range(count + 1))


def _explicit(raw: Any, path: str, errors: list[ConfigError]) -> tuple[float, ...]:
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        errors.append(ConfigError(path, "must be a non-empty list of numbers"))
        return ()
    if len(raw) > MAX_BUCKETS + 1:
        errors.append(ConfigError(path, f"at most {MAX_BUCKETS + 1} bounds"))
        return ()
    bounds: list[float] = []
    for index, value in enumerate(raw):
        number = _number(value, f"{path}[{index}]", errors)
        if number is None:
            return ()
        if bounds and number <= bounds[-1]:
            errors.append(ConfigError(f"{path}[{index}]", "bounds must be strictly increasing"))
            return ()
        bounds.append(number)
    return tuple(bounds)


def _count(raw: Any, path: str, errors: list[ConfigError]) -> int | None:
    number = _number(raw, path, errors)
    if number is None:
        return None
    if number != int(number) or not 0 < number <= MAX_BUCKETS:
        errors.append(ConfigError(path, f"must be a whole number from 1 to {MAX_BUCKETS}"))
        return None
    return int(number)


def _number(raw: Any, path: str, errors: list[ConfigError]) -> float | None:
    if raw is None:
        errors.append(ConfigError(path, "required"))
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        errors.append(ConfigError(path, f"{raw!r} is not a finite number"))
        return None
    return float(raw)


def _check_expiry(raw: Any, errors: list[ConfigError]) -> None:
    # Accepted for compatibility with Istio 1.1+ configs; series do not expire here (yet).
    if raw is None:
        return
    if not isinstance(raw, Mapping):
        errors.append(ConfigError("metricsExpirationPolicy", "must be a map"))
        return
    _unknown_fields(raw, _EXPIRY_FIELDS, "metricsExpirationPolicy", errors)


def _field(data: Mapping[str, Any], camel: str) -> Any:
    """A field in either of the spellings jsonpb accepts."""
    if camel in data:
        return data[camel]
    return data.get(_snake(camel))


def _unknown_fields(
    data: Mapping[str, Any], known: set[str], path: str, errors: list[ConfigError]
) -> None:
    allowed = known | {_snake(name) for name in known}
    for key in data:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            errors.append(ConfigError(where, "unknown field"))


def _snake(camel: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower()
