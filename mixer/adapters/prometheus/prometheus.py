"""The prometheus adapter: metric instances become series in the registry Mixer serves.

A handler's params list the metrics to export (`metrics[]`: name, instanceName, kind,
labelNames, buckets, namespace); each exported name is `<namespace>_<name>`, so Istio's
`requests_total` becomes `istio_requests_total`. Instances are matched to metrics by
`instanceName`, which may be written as `requestcount`, `requestcount.istio-system` or
`requestcount.instance.istio-system` (the namespace, when both sides name one, must agree).
A COUNTER adds the instance value, a GAUGE is set to it, a DISTRIBUTION observes it (a
duration in seconds). Every label name must be a dimension of the instance; dimensions that
are not labels are ignored. A COUNTER is always exported as `..._total` (Prometheus' client
adds it), so `requests` and `requests_total` name the same counter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import prometheus_client

from mixer.adapter.api import AdapterInfo, ConfigError, Env
from mixer.adapters.prometheus import values
from mixer.adapters.prometheus.families import Family, FamilyStore, store_for
from mixer.adapters.prometheus.params import MetricSpec, parse
from mixer.template.templates import Metric

# The kind part of `name.kind.namespace` / `name.kind` references (1.1+ and 0.x spellings).
_KIND_WORDS = {"instance", "metric"}


class MetricError(Exception):
    """Some instances of a report could not be recorded; the others were."""


@dataclasses.dataclass(frozen=True)
class _Binding:
    """A configured metric and the family it writes to."""

    spec: MetricSpec
    family: Family
    target: tuple[str, str | None]  # the instance it takes: (name, namespace or None)


class PrometheusHandler:
    """Records metric instances into shared families; `close()` hands them back."""

    def __init__(
        self,
        *,
        registry: prometheus_client.CollectorRegistry,
        store: FamilyStore,
        bindings: Sequence[_Binding],
    ) -> None:
        # The store holds its registry weakly; the handler keeps it alive until close().
        self._registry = registry
        self._store = store
        self._bindings = tuple(bindings)
        self._by_name: dict[str, list[_Binding]] = {}
        for binding in self._bindings:
            self._by_name.setdefault(binding.target[0], []).append(binding)
        self._resolved: dict[str, tuple[_Binding, ...]] = {}
        self._last_labels: dict[int, tuple[Mapping[str, Any], tuple[str, ...]]] = {}
        self._closed = False

    async def handle_metric(self, instances: Sequence[Metric]) -> None:
        failures: list[str] = []
        # Per binding, its samples in order: each family takes its lock once a Report.
        samples: dict[int, tuple[_Binding, list[Sample]]] = {}
        # An entry whose delta left a metric alone hands over the previous entry's very
        # instance (mixer/runtime/reuse.py): its samples are the ones taken for that one.
        remembered: dict[str, tuple[Metric, list[tuple[_Binding, Sample]]]] = {}
        for instance in instances:
            known = remembered.get(instance.name)
            if known is not None and known[0] is instance:
                for binding, sample in known[1]:
                    samples[id(binding)][1].append(sample)
                continue
            bindings = self._resolve(instance.name)
            if not bindings:
                failures.append(f"{instance.name}: no metric of this handler takes this instance")
                continue
            taken: list[tuple[_Binding, Sample]] = []
            for binding in bindings:
                try:
                    sample = (
                        self._labels(binding, instance.dimensions),
                        values.to_number(instance.value),
                    )
                except ValueError as e:
                    failures.append(f"{instance.name} -> {binding.spec.full_name}: {e}")
                    continue
                taken.append((binding, sample))
                batch = samples.get(id(binding))
                if batch is None:
                    batch = samples[id(binding)] = (binding, [])
                batch[1].append(sample)
            if len(taken) == len(bindings):  # a failure is reported as often as it recurs
                remembered[instance.name] = (instance, taken)
            else:
                remembered.pop(instance.name, None)
        for binding, recorded in samples.values():
            failures.extend(
                f"{binding.spec.full_name}: {refused}"
                for refused in binding.family.record_all(recorded)
            )
        if failures:
            raise MetricError("; ".join(failures))

    def _labels(self, binding: _Binding, dimensions: Mapping[str, Any]) -> tuple[str, ...]:
        """The label values of `dimensions`, remembered for the last dimensions dict seen:
        Mixer hands the entries of one Report the same dict while their labels' attributes
        stay the same (mixer/runtime/reuse.py), and instances' maps are never modified."""
        last = self._last_labels.get(id(binding))
        if last is not None and last[0] is dimensions:
            return last[1]
        labels = _label_values(binding.family, dimensions)
        # Holding the dict keeps its id from being reused by another while it is remembered.
        self._last_labels[id(binding)] = (dimensions, labels)
        return labels

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for binding in self._bindings:
            self._store.release(binding.family)

    def takes(self, instance_name: str) -> bool:
        """Whether some metric of this handler is fed by that instance."""
        return bool(self._resolve(instance_name))

    def _resolve(self, instance_name: str) -> tuple[_Binding, ...]:
        found = self._resolved.get(instance_name)
        if found is None:
            name, namespace = parse_reference(instance_name)
            found = tuple(
                b
                for b in self._by_name.get(name, ())
                if b.target[1] is None or namespace is None or b.target[1] == namespace
            )
            # Bounded by the instance names config can produce, so it need not be evicted.
            self._resolved[instance_name] = found
        return found


Sample = tuple[tuple[str, ...], float]  # (label values, value)


def _label_values(family: Family, dimensions: Mapping[str, Any]) -> tuple[str, ...]:
    try:
        return tuple(values.label_value(dimensions[name]) for name in family.label_names)
    except KeyError as e:
        raise ValueError(
            f"the instance has no dimension {e.args[0]!r} for the label of that name"
        ) from None


def parse_reference(reference: str) -> tuple[str, str | None]:
    """(instance name, namespace or None) of an instance reference in any Istio spelling."""
    parts = reference.split(".")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return (parts[0], None) if parts[1] in _KIND_WORDS else (parts[0], parts[1])
    return parts[0], parts[-1]


class PrometheusBuilder:
    def __init__(self, params: Mapping[str, Any], instances: Mapping[str, Sequence[str]]) -> None:
        self._specs, self._errors = parse(params)
        self._instances = tuple(instances.get("metric", ()))

    def validate(self) -> list[ConfigError]:
        return list(self._errors)

    async def build(self, env: Env) -> PrometheusHandler:
        if self._errors:
            raise ValueError("; ".join(str(e) for e in self._errors))
        store = store_for(env.metrics)
        bindings: list[_Binding] = []
        built = False
        try:
            for spec in self._specs:
                family = store.acquire(spec, env.logger)
                bindings.append(_Binding(spec, family, parse_reference(spec.instance_name)))
            built = True
        finally:
            if not built:  # a foreign collector holds one of the names: give back the rest
                for binding in bindings:
                    store.release(binding.family)
        handler = PrometheusHandler(registry=env.metrics, store=store, bindings=bindings)
        for instance in self._instances:
            # Istio accepts this and fails each report; say it once, at build time.
            if not handler.takes(instance):
                env.logger.warning(
                    "prometheus: instance %s is sent to this handler but no metric takes it",
                    instance,
                )
        return handler


def _new_builder(
    params: Mapping[str, Any], instances: Mapping[str, Sequence[str]]
) -> PrometheusBuilder:
    return PrometheusBuilder(params, instances)


INFO = AdapterInfo(
    name="prometheus",
    description="Publishes Prometheus metrics on Mixer's /metrics endpoint",
    templates=("metric",),
    new_builder=_new_builder,
    default_params={},
)
