"""A compiled Mixer configuration: rules, instances and handlers, swapped in whole.

Built from the config store's `rule`, `instance`, `handler` and `attributemanifest`
resources whenever they change. Expressions are parsed and type-checked once here, so a
request only evaluates closures. A request holds the snapshot it started with to the
end; handlers that a new snapshot no longer uses are closed after a grace period, and a
handler whose resource did not change is carried over (a memquota keeps its counts).
Broken pieces are left out with their error recorded, never the whole snapshot.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format

from mixer.adapter import api as adapter_api
from mixer.adapter.inventory import ADAPTERS
from mixer.runtime import refs
from mixer.runtime.reuse import InstancePlan
from mixer.template.templates import TEMPLATES, FieldKind, Template, Variety
from pkg.config.resource import Resource
from pkg.lang.compiler import Expression, compile_expression
from pkg.lang.errors import LangError
from pkg.lang.types import ValueType

log = logging.getLogger("mixer.config")

DEFAULT_NAMESPACE = "istio-system"
FAIL_OPEN_ANNOTATION = "policy.istio.io/fail-open"
_STRINGY = {ValueType.STRING, ValueType.DNS_NAME, ValueType.EMAIL_ADDRESS, ValueType.URI}


@dataclasses.dataclass(frozen=True)
class CompiledInstance:
    name: str
    namespace: str
    template: Template
    scalars: Mapping[str, Expression]
    maps: Mapping[str, Mapping[str, Expression]]

    @functools.cached_property
    def qualified(self) -> str:  # named in every instance built: kept, not formatted each time
        return refs.key(self.name, self.namespace)

    def build(self, bag: Any) -> Any:
        """The template's dataclass for this request; raises EvalError if a value is absent."""
        values: dict[str, Any] = {name: expr.evaluate(bag) for name, expr in self.scalars.items()}
        for field, exprs in self.maps.items():
            values[field] = {key: expr.evaluate(bag) for key, expr in exprs.items()}
        return self.template.instance_type(name=self.qualified, **values)

    @functools.cached_property
    def plan(self) -> InstancePlan:
        """Its expressions laid out for a Report's entry-by-entry evaluation (reuse.py)."""
        return InstancePlan.of(self)


@dataclasses.dataclass
class HandlerEntry:
    name: str
    namespace: str
    adapter: adapter_api.AdapterInfo
    handler: adapter_api.Handler
    fail_open: bool
    fingerprint: str

    @property
    def qualified(self) -> str:
        return refs.key(self.name, self.namespace)


@dataclasses.dataclass(frozen=True)
class CompiledAction:
    handler: HandlerEntry
    instances: tuple[CompiledInstance, ...]


@dataclasses.dataclass(frozen=True)
class CompiledRule:
    name: str
    namespace: str
    match: Expression | None  # None: every request
    actions: tuple[CompiledAction, ...]

    @functools.cached_property
    def varieties(self) -> frozenset[Variety]:
        """Which requests the rule can act on: a check-only rule never needs evaluating for a Report."""
        return frozenset(i.template.variety for a in self.actions for i in a.instances)

    @functools.cached_property
    def report_instances(self) -> tuple[ReportTarget, ...]:
        """Its REPORT instances in action order, each with the handler that hears of it and
        the batch it joins: what a Report walks for every entry, laid out once."""
        return tuple(
            ReportTarget(
                instance, action.handler, (action.handler.qualified, instance.template.name)
            )
            for action in self.actions
            for instance in action.instances
            if instance.template.variety is Variety.REPORT
        )


@dataclasses.dataclass(frozen=True)
class ReportTarget:
    instance: CompiledInstance
    handler: HandlerEntry
    batch: tuple[str, str]  # (handler, template): one adapter call per batch and Report


@dataclasses.dataclass(frozen=True)
class Snapshot:
    id: int
    types: Mapping[str, ValueType]
    rules: tuple[CompiledRule, ...]
    handlers: Mapping[str, HandlerEntry]
    errors: tuple[str, ...]
    default_namespace: str = DEFAULT_NAMESPACE

    # Per (namespace, variety): built once per snapshot, read by every request.
    _selected: dict[tuple[str | None, Variety], tuple[CompiledRule, ...]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def rules_for(
        self, destination_namespace: str | None, variety: Variety
    ) -> tuple[CompiledRule, ...]:
        """Rules of the default namespace apply to all traffic, others to their namespace's;
        only rules with an action of this variety (a check-only rule is never evaluated for a Report)."""
        key = (destination_namespace, variety)
        rules = self._selected.get(key)
        if rules is None:
            rules = self._selected[key] = tuple(
                r
                for r in self.rules
                if r.namespace in (self.default_namespace, destination_namespace)
                and variety in r.varieties
            )
        return rules


EMPTY = Snapshot(id=0, types={}, rules=(), handlers={}, errors=())


async def build_snapshot(
    snapshot_id: int,
    configs: Mapping[str, Sequence[Resource]],
    *,
    base_types: Mapping[str, ValueType],
    env: adapter_api.Env,
    previous: Snapshot = EMPTY,
    default_namespace: str = DEFAULT_NAMESPACE,
) -> Snapshot:
    """Compile `configs` (kind name -> resources); reuse `previous`'s unchanged handlers."""
    errors: list[str] = []
    types = dict(base_types)
    for manifest in configs.get("attributemanifest", ()):
        for name, info in manifest.spec.attributes.items():
            types[name] = ValueType(info.value_type)

    instances: dict[str, CompiledInstance] = {}
    for resource in configs.get("instance", ()):
        try:
            compiled = compile_instance(resource, types)
        except ValueError as error:
            errors.append(f"instance {_where(resource)}: {error}")
            continue
        instances[compiled.qualified] = compiled

    rules = configs.get("rule", ())
    used_instances = _instances_by_handler(rules, instances, errors)
    handlers: dict[str, HandlerEntry] = {}
    for resource in configs.get("handler", ()):
        qualified = refs.key(resource.metadata.name, resource.metadata.namespace)
        entry = await _handler(resource, used_instances.get(qualified, {}), env, previous, errors)
        if entry is not None:
            handlers[qualified] = entry

    compiled_rules = []
    for resource in rules:
        rule = _compile_rule(resource, types, instances, handlers, errors)
        if rule is not None:
            compiled_rules.append(rule)
    for problem in errors:
        log.warning("config: %s", problem)
    return Snapshot(
        snapshot_id, types, tuple(compiled_rules), handlers, tuple(errors), default_namespace
    )


def compile_instance(resource: Resource, types: Mapping[str, ValueType]) -> CompiledInstance:
    spec = resource.spec
    template_name = spec.compiled_template or spec.template
    template = TEMPLATES.get(template_name)
    if template is None:
        raise ValueError(
            f"unknown template {template_name!r} (known: {', '.join(sorted(TEMPLATES))})"
        )
    params = json_format.MessageToDict(spec.params) if spec.HasField("params") else {}
    scalars: dict[str, Expression] = {}
    maps: dict[str, dict[str, Expression]] = {}
    for field, value in params.items():
        kind = template.fields.get(_snake(field))
        if kind is None:
            raise ValueError(f"params.{field}: template {template.name} has no such field")
        if kind is FieldKind.MAP_OF_VALUES:
            if not isinstance(value, dict):
                raise ValueError(f"params.{field}: want a map of expressions")
            maps[_snake(field)] = {
                k: _expression(f"params.{field}.{k}", v, types, None) for k, v in value.items()
            }
        else:
            want = {FieldKind.STRING: _STRINGY, FieldKind.TIMESTAMP: {ValueType.TIMESTAMP}}.get(
                kind
            )
            scalars[_snake(field)] = _expression(f"params.{field}", value, types, want)
    missing = template.required - set(scalars) - set(maps)
    if missing:
        raise ValueError(f"params: template {template.name} needs {', '.join(sorted(missing))}")
    return CompiledInstance(
        resource.metadata.name, resource.metadata.namespace, template, scalars, maps
    )


def _expression(
    path: str, text: Any, types: Mapping[str, ValueType], want: set[ValueType] | None
) -> Expression:
    if not isinstance(text, str):
        raise ValueError(f"{path}: want an expression (a string), got {json.dumps(text)}")
    try:
        expr = compile_expression(text, types)
    except LangError as error:
        raise ValueError(f"{path}: {error}") from None
    if want is not None and expr.type not in want:
        raise ValueError(
            f"{path}: {text!r} is {expr.type.name}, want {'/'.join(sorted(t.name for t in want))}"
        )
    return expr


def _instances_by_handler(
    rules: Sequence[Resource], instances: Mapping[str, CompiledInstance], errors: list[str]
) -> dict[str, dict[str, list[str]]]:
    """handler -> template -> instance names the rules send it (what its builder validates)."""
    out: dict[str, dict[str, list[str]]] = {}
    for rule in rules:
        namespace = rule.metadata.namespace
        for action in rule.spec.actions:
            handler = refs.key(*refs.resolve(action.handler, namespace))
            for reference in action.instances:
                instance = instances.get(refs.key(*refs.resolve(reference, namespace)))
                if instance is not None:
                    names = out.setdefault(handler, {}).setdefault(instance.template.name, [])
                    if instance.qualified not in names:
                        names.append(instance.qualified)
    return out


async def _handler(
    resource: Resource,
    instances: Mapping[str, list[str]],
    env: adapter_api.Env,
    previous: Snapshot,
    errors: list[str],
) -> HandlerEntry | None:
    spec = resource.spec
    adapter = ADAPTERS.get(spec.compiled_adapter or spec.adapter)
    if adapter is None:
        errors.append(
            f"handler {_where(resource)}: unknown adapter {spec.compiled_adapter or spec.adapter!r} "
            f"(known: {', '.join(sorted(ADAPTERS))})"
        )
        return None
    params = {
        **adapter.default_params,
        **(json_format.MessageToDict(spec.params) if spec.HasField("params") else {}),
    }
    fail_open = resource.metadata.annotations.get(FAIL_OPEN_ANNOTATION, "").lower() == "true"
    fingerprint = json.dumps([adapter.name, params, instances], sort_keys=True, default=str)
    qualified = refs.key(resource.metadata.name, resource.metadata.namespace)
    old = previous.handlers.get(qualified)
    if old is not None and old.fingerprint == fingerprint:
        return dataclasses.replace(old, fail_open=fail_open)
    builder = adapter.new_builder(params, instances)
    problems = builder.validate()
    if problems:
        errors.extend(f"handler {_where(resource)}: params.{p}" for p in problems)
        return None
    try:
        handler = await builder.build(env)
    except Exception as error:  # an adapter that cannot start must not stop the others
        errors.append(
            f"handler {_where(resource)}: adapter {adapter.name} failed to start: {error}"
        )
        return None
    return HandlerEntry(
        resource.metadata.name,
        resource.metadata.namespace,
        adapter,
        handler,
        fail_open,
        fingerprint,
    )


def _compile_rule(
    resource: Resource,
    types: Mapping[str, ValueType],
    instances: Mapping[str, CompiledInstance],
    handlers: Mapping[str, HandlerEntry],
    errors: list[str],
) -> CompiledRule | None:
    spec = resource.spec
    namespace = resource.metadata.namespace
    match = None
    if spec.match.strip():
        try:
            match = _expression("match", spec.match, types, {ValueType.BOOL})
        except ValueError as error:
            errors.append(f"rule {_where(resource)}: {error}")
            return None
    actions = []
    for i, action in enumerate(spec.actions):
        handler = handlers.get(refs.key(*refs.resolve(action.handler, namespace)))
        if handler is None:
            errors.append(
                f"rule {_where(resource)}: actions[{i}].handler: {action.handler!r} is not a working handler"
            )
            continue
        resolved = []
        for reference in action.instances:
            instance = instances.get(refs.key(*refs.resolve(reference, namespace)))
            if instance is None:
                errors.append(
                    f"rule {_where(resource)}: actions[{i}].instances: {reference!r} is not a working instance"
                )
            elif instance.template.name not in handler.adapter.templates:
                errors.append(
                    f"rule {_where(resource)}: actions[{i}]: adapter {handler.adapter.name} does not take "
                    f"{instance.template.name} instances ({reference})"
                )
            else:
                resolved.append(instance)
        if resolved:
            actions.append(CompiledAction(handler, tuple(resolved)))
    return CompiledRule(resource.metadata.name, namespace, match, tuple(actions))


def _where(resource: Resource) -> str:
    return f"{resource.metadata.namespace}/{resource.metadata.name}"


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
