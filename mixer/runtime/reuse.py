"""A Report's entries evaluated one after another, reusing what the previous entry gave.

Reports come batched and delta-encoded: each entry carries only the attributes that changed
since the one before (`decode_report_deltas`). Within one flow most attributes never change
(the workloads, their labels, the service, the protocol), so most of an instance's
expressions (a metric's 17 dimensions, most of an access log's variables) would give the
value they gave for the previous entry. Every compiled expression knows the attributes it
may read (`Expression.attributes`), so an expression is evaluated again only when one of
them is in the entry's delta; the others keep their previous value, the very same object.
A map field (dimensions, variables) none of whose expressions was evaluated again is the
previous instance's dict itself, and an instance none of whose expressions was is the
previous instance itself: adapters may key caches on that identity (the prometheus adapter
keeps a metric's label values per dimensions dict). Instances' maps are shared, so adapters
must never modify them (none does).

Evaluation is a pure function of the bag, so the result is what evaluating every expression
would give; what is not reused: an entry that stands alone (the first, or one of an
INDEPENDENT_ENCODING batch), and anything after an evaluation that failed (the next entry
evaluates that instance afresh, so a failure is counted as often as without reuse).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pkg.lang.compiler import Expression
from pkg.lang.errors import EvalError

if TYPE_CHECKING:
    from mixer.runtime.snapshot import CompiledInstance, CompiledRule

# The names an entry set anew; None: it stands alone, everything is new.
Changed = Collection[str] | None


@dataclasses.dataclass(frozen=True)
class InstancePlan:
    """An instance's expressions laid out flat: the scalars, then each map's entries."""

    expressions: tuple[Expression, ...]
    scalar_names: tuple[str, ...]  # fields of expressions[0 : len(scalar_names)]
    maps: tuple[tuple[str, tuple[str, ...], int], ...]  # (field, keys, index of the first)
    readers: Mapping[str, tuple[int, ...]]  # attribute -> the expressions that may read it
    map_of: tuple[int, ...]  # per expression: which of `maps` it fills, -1 for a scalar
    read: frozenset[str]  # every attribute some expression may read
    # stale() per delta's names: a flow's deltas come in a few shapes (times, ids, headers).
    _stale: dict[frozenset[str], Stale] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, instance: CompiledInstance) -> InstancePlan:
        expressions = list(instance.scalars.values())
        map_of = [-1] * len(expressions)
        maps = []
        for field, entries in instance.maps.items():
            maps.append((field, tuple(entries), len(expressions)))
            map_of.extend([len(maps) - 1] * len(entries))
            expressions.extend(entries.values())
        readers: dict[str, list[int]] = {}
        for i, expression in enumerate(expressions):
            for name in expression.attributes:
                readers.setdefault(name, []).append(i)
        return cls(
            tuple(expressions),
            tuple(instance.scalars),
            tuple(maps),
            {name: tuple(slots) for name, slots in readers.items()},
            tuple(map_of),
            frozenset(readers),
        )

    def evaluate(self, bag: Any) -> list[Any]:
        """Every expression's value, in order; raises EvalError."""
        return [expression.evaluate(bag) for expression in self.expressions]

    def stale(self, changed: frozenset[str]) -> Stale:
        """The expressions that read one of `changed`, in order, and the maps they fill."""
        known = self._stale.get(changed)
        if known is not None:
            return known
        found: set[int] = set()
        for name in self.read.intersection(changed):  # in C: most of a delta is read by none
            found.update(self.readers[name])
        slots = tuple(sorted(found))
        known = Stale(slots, tuple(sorted({self.map_of[i] for i in slots} - {-1})))
        if len(self._stale) < _STALE_SHAPES:
            self._stale[changed] = known
        return known

    def map_values(self, values: Sequence[Any]) -> list[dict[str, Any]]:
        return [
            dict(zip(keys, values[start : start + len(keys)], strict=True))
            for _, keys, start in self.maps
        ]


@dataclasses.dataclass(frozen=True)
class Stale:
    expressions: tuple[int, ...]  # indexes into InstancePlan.expressions, in order
    maps: tuple[int, ...]  # indexes into InstancePlan.maps


# Delta shapes remembered per instance; past this (a client whose deltas never repeat)
# stale() is computed each time rather than remembered.
_STALE_SHAPES = 256


class _Memo:
    __slots__ = ("built", "entry", "maps", "values")

    def __init__(
        self, entry: int, values: list[Any], maps: list[dict[str, Any]], built: Any
    ) -> None:
        self.entry = entry  # the entry these values are of
        self.values = values
        self.maps = maps
        self.built = built


_FAILED = object()  # a match that could not be evaluated


class ReportEvaluator:
    """The matches and instances of one Report's entries, in order: `begin` each entry, then
    ask for its matches and instances. Not shared between Reports.

    What it keeps is only ever reused for the entry right after the one it was evaluated
    for: a rule or instance skipped for an entry (another namespace's, or its rule did not
    match) missed that entry's delta, so it is evaluated afresh when next asked for.
    """

    def __init__(self) -> None:
        self._entry = -1
        self._changed: frozenset[str] | None = None
        self._instances: dict[int, _Memo] = {}  # by id(): the snapshot outlives the Report
        self._matches: dict[int, tuple[int, object]] = {}

    def begin(self, changed: Changed) -> None:
        """The next entry, whose delta set `changed` anew (None: it stands alone)."""
        self._entry += 1
        # One frozenset an entry, for every instance's stale() to look up.
        self._changed = None if changed is None else frozenset(changed)

    def match(self, rule: CompiledRule, bag: Any) -> bool | None:
        """Whether the rule's match holds; None if it could not be evaluated (an absent
        attribute). A rule without a match always holds."""
        match = rule.match
        if match is None:
            return True
        key, entry, changed = id(rule), self._entry, self._changed
        if changed is not None:
            previous = self._matches.get(key)
            if (
                previous is not None
                and previous[0] == entry - 1
                and match.attributes.isdisjoint(changed)
            ):
                self._matches[key] = (entry, previous[1])
                return None if previous[1] is _FAILED else previous[1]  # type: ignore[return-value]
        try:
            result = bool(match.evaluate(bag))
        except EvalError:
            self._matches[key] = (entry, _FAILED)
            return None
        self._matches[key] = (entry, result)
        return result

    def build(self, instance: CompiledInstance, bag: Any) -> Any:
        """The instance for this entry, as `instance.build(bag)` makes it; raises EvalError."""
        plan = instance.plan
        key, entry, changed = id(instance), self._entry, self._changed
        memo = self._instances.get(key)
        if memo is not None and memo.entry == entry:  # asked for twice in one entry
            return memo.built
        if memo is None or changed is None or memo.entry != entry - 1:
            try:
                values = plan.evaluate(bag)
            except EvalError:
                self._instances.pop(key, None)
                raise
            maps = plan.map_values(values)
            built = _assemble(instance, plan, values, maps)
            self._instances[key] = _Memo(entry, values, maps, built)
            return built
        stale = plan.stale(changed)
        if not stale.expressions:
            memo.entry = entry
            return memo.built
        values = memo.values.copy()
        expressions = plan.expressions
        try:
            for i in stale.expressions:
                values[i] = expressions[i].evaluate(bag)
        except EvalError:
            del self._instances[key]
            raise
        maps = memo.maps.copy()
        for m in stale.maps:
            _, keys, start = plan.maps[m]
            maps[m] = dict(zip(keys, values[start : start + len(keys)], strict=True))
        built = _assemble(instance, plan, values, maps)
        self._instances[key] = _Memo(entry, values, maps, built)
        return built


def _assemble(
    instance: CompiledInstance, plan: InstancePlan, values: list[Any], maps: list[dict[str, Any]]
) -> Any:
    fields = dict(zip(plan.scalar_names, values, strict=False))
    for (field, _, _), mapping in zip(plan.maps, maps, strict=True):
        fields[field] = mapping
    return instance.template.instance_type(name=instance.qualified, **fields)
