"""Snapshots: the catalog evaluated at one pinned instant, shaped into the summary document.

PromQL does the arithmetic; this module only turns each query's answer into a field value
(or a null with its reason) and the fields into the JSON document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from exporter.catalog import Catalog, CheckNames, ColumnKind, ColumnSpec, FieldSpec, Kind, render
from exporter.errors import UpstreamError
from exporter.prometheus import QueryResult, ReadBudget, Sample, Upstream, bounded_warnings
from exporter.ranking import LABEL_LENGTH_LIMIT, rank
from exporter.recorded import RecordedRead, RecordedRules
from exporter.settings import TableLimits, default
from exporter.strict_json import encode, encode_members, join_members

# A table's cell: a number, a label's value, or null.
Cell = int | float | str | None
Row = dict[str, Cell]
Value = int | float | list[str] | list[Row] | None
FieldKey = tuple[str, str]
Source = Literal["background", "on_demand"]
# How a value relates to the true one when it is not exact: only a lower bound of it.
AT_LEAST = "at_least"
# The domains a document shows, None for all of them.
Selection = tuple[str, ...] | None


@dataclass(frozen=True)
class FieldValue:
    """A field's value at `evaluated_at`, or None with the `reason` why."""

    value: Value
    evaluated_at: float
    reason: str | None = None
    # For kind labels: (label value, query value) pairs, most first; they become gauges.
    series: tuple[tuple[str, float], ...] = ()
    warnings: tuple[str, ...] = ()
    # The failure of the latest attempt. With a value, that value is carried over (stale).
    error: UpstreamError | None = None
    # AT_LEAST when the value is only a lower bound of the true one (see the field's reason).
    bound: str | None = None
    # The metrics the query reads, when none of them has series within the lookback: the
    # field is null because the gateway does not write them, not because nothing happened.
    missing: tuple[str, ...] = ()
    # For kind table: why each null cell is null, as (row's entity, column, reason).
    cells: tuple[tuple[str, str, str], ...] = ()
    # For kind table: how it was cut, when it had more rows than it may keep.
    cut: Cut | None = None
    # Whether every query of the field was answered by its recording rule.
    recorded: bool = False

    @property
    def stale(self) -> bool:
        return self.error is not None and self.value is not None


@dataclass(frozen=True)
class Cut:
    """A table kept `rows` of its `of` rows, the first in its order, as `limit` says."""

    rows: int
    of: int
    limit: str

    def document(self) -> dict[str, Any]:
        return {"rows": self.rows, "of": self.of, "limit": self.limit}


@dataclass(frozen=True)
class Snapshot:
    """Every field of a catalog for one attempt at one instant and window."""

    instant: float
    window: str
    fields: Mapping[FieldKey, FieldValue]
    upstream: str
    catalog: Catalog  # the one evaluated: what the fields mean and how they were asked
    source: Source = "background"
    # Which upstream answered how many of this attempt's queries (failover shows here).
    answered_by: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # Answers of the catalog's query checks, by check name; never fields, never gauges.
    checks: Mapping[str, FieldValue] = dataclasses.field(default_factory=dict)
    # What each check's detail names (its `names` query), by check name: `series` holds
    # (name, value) pairs, highest value first.
    names: Mapping[str, FieldValue] = dataclasses.field(default_factory=dict)
    # Series (under the selector) with a sample within the lookback, per metric the catalog
    # reads; empty when that question failed.
    sources: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # What the recording rules answered, when this attempt read them (the background
    # refresh's, with EXPORTER_RECORDED_RULES auto or on).
    recorded: RecordedRead | None = None
    # When this attempt reached no upstream: the data instant of the attempt before it, so that
    # the age of the newest data keeps growing through an outage (set by carry_over).
    last_data_instant: float | None = None
    # By domain selection: the document built and its members encoded once, and the last body
    # joined from them with the age it shows, which the requests of that millisecond share.
    _documents: dict[Selection, dict[str, bytes]] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    _bodies: dict[Selection, _AgedBody] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @functools.cached_property
    def reached_upstream(self) -> bool:
        return any(field.error is None for field in self.fields.values())

    @property
    def stale(self) -> bool:
        return not self.reached_upstream or any(f.stale for f in self.fields.values())

    @property
    def data_instant(self) -> float:
        """The instant of the newest data from the upstream: this attempt's when it answered,
        else the last one's that did, whether its values are still served or have turned null;
        the first attempt's when none has been answered yet."""
        if self.reached_upstream or self.last_data_instant is None:
            return self.instant
        return self.last_data_instant

    def errors(self) -> list[tuple[str, UpstreamError]]:
        """(domain, error) for every field whose query failed in this attempt."""
        return [(domain, f.error) for (domain, _), f in self.fields.items() if f.error is not None]

    def document(
        self,
        now: float,
        domains: Iterable[str] | None = None,
        about: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The summary as JSON-ready data; `domains` narrows `metrics` to those domains.

        `about` is what the serving process says of itself (version, environment), appended.
        """
        wanted = None if domains is None else set(domains)
        metrics: dict[str, dict[str, Value]] = {}
        nulls: dict[str, str] = {}
        bounds: dict[str, str] = {}
        cuts: dict[str, dict[str, Any]] = {}
        stale_fields: dict[str, dict[str, Any]] = {}
        warnings: dict[str, list[str]] = {}
        for (domain, name), field in self.fields.items():
            if wanted is not None and domain not in wanted:
                continue
            metrics.setdefault(domain, {})[name] = field.value
            key = f"{domain}.{name}"
            if field.value is None and field.reason is not None:
                nulls[key] = field.reason
            if field.value is not None and field.bound is not None:
                bounds[key] = field.bound
            for entity, column, reason in field.cells:
                nulls[f"{key}[{entity}].{column}"] = reason
            if field.cut is not None:
                cuts[key] = field.cut.document()
            if field.stale and field.error is not None:
                stale_fields[key] = {
                    "timestamp": format_instant(field.evaluated_at),
                    "age_seconds": _age(now, field.evaluated_at),
                    "error": str(field.error),
                }
            if field.warnings:
                warnings[key] = list(field.warnings)
        data_instant = self.data_instant
        return {
            "timestamp": format_instant(data_instant),
            "window": self.window,
            "stale": self.stale,
            "age_seconds": _age(now, data_instant),
            "source": self.source,
            "metrics": metrics,
            "nulls": nulls,
            "bounds": bounds,
            "cuts": cuts,
            "stale_fields": stale_fields,
            "warnings": warnings,
            "upstream": {
                "url": self.upstream,
                "up": self.reached_upstream,
                "answered_by": sorted(self.answered_by),
            },
            "recorded_rules": self._recorded_rules(),
            **(about or {}),
        }

    def _recorded_rules(self) -> dict[str, Any] | None:
        """Whether the recording rules were read, the instant of their evaluation read (which
        is the snapshot's), and how many fields they answered."""
        if self.recorded is None:
            return None
        instant = self.recorded.instant
        return {
            "mode": self.recorded.mode,
            "timestamp": None if instant is None else format_instant(instant),
            "fields": sum(f.recorded for f in self.fields.values()),
            "of": len(self.fields),
            "error": None if self.recorded.error is None else str(self.recorded.error),
        }

    def encode(
        self,
        now: float,
        domains: Iterable[str] | None = None,
        about: Callable[[], Mapping[str, Any]] | None = None,
    ) -> bytes:
        """The document as strict JSON bytes; only its age is encoded again, when it changes.

        The document is built, its floats rounded and its members encoded once per domain
        selection, with what `about` returns then: that must not change over a snapshot's life.
        Stale fields carry ages of their own: a document with any is built at every call.
        """
        selection = None if domains is None else tuple(domains)
        last = self._bodies.get(selection)
        if last is not None and last.since <= now < last.until:
            return last.body
        members = self._documents.get(selection)
        if members is None:
            facts = None if about is None else about()
            if any(f.stale for f in self.fields.values()):
                return encode(self.document(now, selection, facts))
            members = encode_members(self.document(self.instant, selection, facts))
            self._documents[selection] = members
        at = self.data_instant
        age = _age(now, at)
        aged = members | encode_members({"age_seconds": age})
        shown = self._bodies[selection] = _AgedBody.shown_from(at, age, join_members(aged.values()))
        return shown.body


@dataclass(frozen=True, slots=True)
class _AgedBody:
    """A body and the clock readings it is right for: those whose age rounds to the age it
    shows. Telling that by comparing readings spares the requests of that millisecond the
    rounding, which costs more than the rest of their encoding."""

    since: float
    until: float
    body: bytes

    # Readings this close to where the rounding turns are encoded afresh: `now` as epoch
    # seconds is a float with steps of about 2.4e-7 s, so the sum below may be off by one.
    _MARGIN = 1e-6

    @classmethod
    def shown_from(cls, at: float, age: float, body: bytes) -> _AgedBody:
        half = 0.0005 - cls._MARGIN
        since = -math.inf if age == 0 else at + age - half
        return cls(since, at + age + half, body)


def format_instant(at: float) -> str:
    """RFC 3339 in UTC, with milliseconds only when the instant has them."""
    moment = datetime.fromtimestamp(at, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _age(now: float, at: float) -> float:
    return round(max(0.0, now - at), 3)


def explain(
    catalog: Catalog, snapshot: Snapshot, domains: Iterable[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Per field: the PromQL as asked and the instant of its value, to paste into Prometheus;
    the metrics it reads with their series in the lookback; and when its value is only a
    lower bound, the PromQL that says so and why."""
    wanted = None if domains is None else set(domains)
    explained: dict[str, dict[str, Any]] = {}
    for domain, name, spec in catalog.fields():
        field = snapshot.fields.get((domain, name))
        if (wanted is not None and domain not in wanted) or field is None:
            continue
        entry: dict[str, Any] = {
            "promql": spec.render(snapshot.window),
            "time": format_instant(field.evaluated_at),
            "unit": spec.unit.value,
        }
        entry |= _answered_by(spec, field, snapshot)
        if sources := spec.sources():
            entry["reads"] = {source: snapshot.sources.get(source) for source in sources}
            entry["reads_promql"] = catalog.existence_query(sources)
        if spec.lower_bound is not None:
            entry["lower_bound"] = {
                "promql": spec.render_lower_bound(snapshot.window),
                "applies": field.bound == AT_LEAST,
                "reason": spec.lower_bound.reason,
            }
        if spec.kind is Kind.TABLE:
            entry |= {"key": spec.label, "order": spec.order}
            entry["columns"] = {
                column: _explain_column(column_spec, snapshot.window)
                for column, column_spec in spec.columns.items()
            }
        explained[f"{domain}.{name}"] = entry
    return explained


def _answered_by(spec: FieldSpec, field: FieldValue, snapshot: Snapshot) -> dict[str, Any]:
    """Which answered the field, its recording rule or its PromQL (then `promql` is what was
    asked), and for a rule what was asked."""
    recorded = snapshot.recorded
    if not field.recorded or recorded is None:
        return {"answered_by": "promql"}
    rules = recorded.rules
    asked = [rules.selector_of(rules.by_promql[q]) for q in _queries(spec, snapshot.window)]
    return {
        "answered_by": "recorded_rule",
        "asked": asked[0] if len(asked) == 1 else asked,
        "read_promql": list(recorded.queries),
    }


def _queries(spec: FieldSpec, window: str) -> list[str]:
    """The distinct PromQL a field's value comes from: its query (a table's rows), its lower
    bound's and its columns'."""
    return list(dict.fromkeys(render(template, window) for template in spec.templates()))


def _explain_column(column: ColumnSpec, window: str) -> dict[str, Any]:
    return {
        "promql": column.render(window),
        "kind": column.kind.value,
        "unit": None if column.unit is None else column.unit.value,
        "help": column.help,
    }


@dataclass(frozen=True)
class Existence:
    """Which metrics have series (under the selector) with a sample within the lookback."""

    counts: Mapping[str, int]
    lookback: str
    selector: str = ""
    error: UpstreamError | None = None

    @classmethod
    def from_answer(
        cls, answer: QueryResult | UpstreamError | None, lookback: str, selector: str
    ) -> Existence:
        if isinstance(answer, UpstreamError):
            return cls({}, lookback, selector, answer)
        samples = () if answer is None else answer.samples
        counts = {s.labels.get("__name__", ""): int(s.value) for s in samples if s.value > 0}
        return cls(counts, lookback, selector)

    def missing(self, names: tuple[str, ...]) -> tuple[str, ...]:
        """`names` when none of them has series; () when one has, or when that is unknown."""
        if self.error is not None or any(self.counts.get(name) for name in names):
            return ()
        return names

    def reason(self, names: tuple[str, ...]) -> str:
        shown = [f"{name}{{{self.selector}}}" if self.selector else name for name in names]
        if len(shown) == 1:
            return (
                f"{shown[0]} has no series in the upstream over the last {self.lookback}"
                " (the gateway does not write it, or is down)"
            )
        listed = ", ".join(shown[:-1]) + f" or {shown[-1]}"
        return (
            f"no series of {listed} in the upstream over the last {self.lookback}"
            " (the gateway writes none of them, or is down)"
        )


def shape(
    spec: FieldSpec,
    outcome: QueryResult | UpstreamError,
    at: float,
    *,
    existence: Existence | None = None,
    lower_bound: QueryResult | UpstreamError | None = None,
    max_entities: int | None = None,
) -> FieldValue:
    """One query's answer as a field value; never a number Prometheus did not give.

    `existence` tells a count that is empty because nothing happened (0) from one whose
    metrics do not exist (null); `lower_bound` is the answer of the field's lower-bound query;
    a labels field keeps `max_entities` label values (EXPORTER_MAX_ENTITIES by default).
    """
    max_entities = max_entities or default("max_entities")
    for failed in (outcome, lower_bound):
        if isinstance(failed, UpstreamError):
            return FieldValue(None, at, reason=f"query failed: {failed}", error=failed)
    assert isinstance(outcome, QueryResult)  # both failures returned above
    warnings = outcome.warnings
    samples = outcome.samples
    ranked: list[tuple[str, float]] = []
    if spec.kind is Kind.LABELS:
        assert spec.label is not None  # the catalog guarantees a label for kind labels
        everyone = rank(samples, spec.label)
        ranked = everyone[:max_entities]
        warnings += _left_out(_too_long(samples, spec.label), _too_long_why(spec.label))
        warnings += _left_out(
            len(everyone) - len(ranked), f"beyond the first {max_entities} (EXPORTER_MAX_ENTITIES)"
        )
        if ranked:
            return FieldValue(
                [name for name, _ in ranked], at, series=tuple(ranked), warnings=warnings
            )
    if not samples or spec.kind is Kind.LABELS:
        return _empty(spec, at, existence, warnings)
    if len(samples) > 1:
        reason = f"query returned {len(samples)} series where one was expected (aggregate it)"
        return FieldValue(None, at, reason=reason, warnings=warnings)
    number, problem = _number(samples[0].value, spec.kind is Kind.INTEGER)
    if number is None:
        return FieldValue(None, at, reason=problem, warnings=warnings)
    bound = AT_LEAST if isinstance(lower_bound, QueryResult) and lower_bound.samples else None
    return FieldValue(number, at, warnings=warnings, bound=bound)


def _number(value: float, count: bool) -> tuple[int | float, None] | tuple[None, str]:
    """A value of Prometheus' as a JSON number (an int for a count), or why it cannot be one."""
    if math.isnan(value):
        return None, "Prometheus returned NaN"
    if math.isinf(value):
        return None, f"Prometheus returned {'+' if value > 0 else '-'}Inf"
    if not count:
        return value, None
    if not value.is_integer():
        return None, f"Prometheus returned {value!r} for a count (wrap the query in round())"
    return int(value), None


def _too_long(samples: Iterable[Sample], label: str) -> int:
    return sum(1 for s in samples if len(s.labels.get(label, "")) > LABEL_LENGTH_LIMIT)


def _too_long_why(label: str) -> str:
    return f"a {label} longer than {LABEL_LENGTH_LIMIT} characters"


def shape_table(
    spec: FieldSpec,
    rows: QueryResult | UpstreamError,
    columns: Mapping[str, QueryResult | UpstreamError],
    at: float,
    *,
    existence: Existence,
    limits: TableLimits,
    total: int | None = None,
) -> FieldValue:
    """A table's rows, in its order and cut to its limit, each with one cell per column.

    The rows are the series of the field's own query, ordered by their values (ties by the
    entity's name); a cell is its column's series for the row's entity. A failed query fails
    the whole table, so that a stale one is kept whole. `total` is how many rows there are
    when `rows` holds only the first ones (a bounded read of a recorded answer).
    """
    for outcome in (rows, *columns.values()):
        if isinstance(outcome, UpstreamError):
            return FieldValue(None, at, reason=f"query failed: {outcome}", error=outcome)
    assert isinstance(rows, QueryResult)  # every failure returned above
    answers = {name: answer for name, answer in columns.items() if isinstance(answer, QueryResult)}
    told = dict.fromkeys(w for answer in (rows, *answers.values()) for w in answer.warnings)
    # As many as of one answer, however many columns the table has.
    warnings = bounded_warnings(list(told))
    assert spec.label is not None  # the catalog guarantees the entity label of a table
    key = spec.label
    warnings += _left_out(_too_long(rows.samples, key), _too_long_why(key))
    entities = list(
        dict.fromkeys(name for name, _ in rank(rows.samples, key, spec.order != "ascending"))
    )
    if not entities:
        return _empty(spec, at, existence, warnings)
    limit, said_by = limits.rows(spec.limit)
    of = len(entities) if total is None else total
    cut = Cut(limit, of, said_by) if of > limit else None
    by_entity = {name: _by_entity(answer.samples, key) for name, answer in answers.items()}
    table: list[Row] = []
    reasons: list[tuple[str, str, str]] = []
    for entity in entities[:limit]:
        row: Row = {key: entity}
        for name, column in spec.columns.items():
            found = by_entity[name].get(entity, [])
            missing = existence.missing(spec.column_sources(column)) if not found else ()
            row[name], reason = _cell(column, found, existence, missing)
            if reason is not None:
                reasons.append((entity, name, reason))
        table.append(row)
    return FieldValue(table, at, warnings=warnings, cells=tuple(reasons), cut=cut)


def _by_entity(samples: Iterable[Sample], key: str) -> dict[str, list[Sample]]:
    grouped: dict[str, list[Sample]] = {}
    for sample in samples:
        grouped.setdefault(sample.labels.get(key, ""), []).append(sample)
    return grouped


def _cell(
    column: ColumnSpec, found: list[Sample], existence: Existence, missing: tuple[str, ...]
) -> tuple[Cell, str | None]:
    """A cell's value, or None and why; never a number Prometheus did not give."""
    if not found:
        if missing:
            return None, existence.reason(missing)
        if column.no_series_means_zero:
            if existence.error is not None:
                return None, f"query failed: {existence.error}"
            return 0, None
        return None, column.when_empty
    if len(found) > 1:
        return None, f"{len(found)} series for this row where one was expected (aggregate it)"
    sample = found[0]
    if column.kind is ColumnKind.LABEL:
        assert column.label is not None  # the catalog guarantees it for label columns
        text = sample.labels.get(column.label)
        if text and len(text) > LABEL_LENGTH_LIMIT:
            return None, f"its {_too_long_why(column.label)[2:]}"
        return (text, None) if text else (None, f"the answer has no {column.label} label")
    return _number(sample.value, column.kind is ColumnKind.INTEGER)


def shape_names(
    names: CheckNames, outcome: QueryResult | UpstreamError, at: float, max_entities: int
) -> FieldValue:
    """What a check's detail names, highest value first, at most `max_entities` of them."""
    if isinstance(outcome, UpstreamError):
        return FieldValue(None, at, reason=f"query failed: {outcome}", error=outcome)
    ranked = rank(outcome.samples, names.label)[:max_entities]
    return FieldValue([name for name, _ in ranked], at, series=tuple(ranked))


def _empty(
    spec: FieldSpec, at: float, existence: Existence | None, warnings: tuple[str, ...]
) -> FieldValue:
    """An answer without series: 0 for a count of metrics that exist, else null and why."""
    if existence is not None and existence.error is not None and spec.no_series_means_zero:
        # Without knowing that its metrics exist, a zero could be invented.
        error = existence.error
        return FieldValue(None, at, reason=f"query failed: {error}", error=error)
    if existence is not None and (missing := existence.missing(spec.sources())):
        reason = existence.reason(missing)
        return FieldValue(None, at, reason=reason, warnings=warnings, missing=missing)
    if spec.no_series_means_zero:
        empty_list = spec.kind in (Kind.LABELS, Kind.TABLE)
        return FieldValue([] if empty_list else 0, at, warnings=warnings)
    return FieldValue(None, at, reason=spec.when_empty, warnings=warnings)


def _left_out(count: int, why: str) -> tuple[str, ...]:
    return (f"{count} series left out: {why}",) if count else ()


def explain_zero_denominators(
    catalog: Catalog, fields: dict[FieldKey, FieldValue]
) -> dict[FieldKey, FieldValue]:
    """Replace the reason of a null ratio whose declared denominator is 0 with the 0/0 text."""
    explained = dict(fields)
    for domain, name, spec in catalog.fields():
        field = fields[(domain, name)]
        if (
            spec.denominator is None
            or field.value is not None
            or field.error is not None
            or field.missing
        ):
            continue
        denominator = fields[(domain, spec.denominator)]
        if denominator.value == 0 and denominator.error is None:
            explained[(domain, name)] = replace(field, reason=spec.when_zero_denominator)
    return explained


class QueryDurations:
    """How long each query took when it was last asked. An evaluation sends its queries
    slowest first: it then ends about when its slowest query does, rather than when that
    query, sent after all the others, is answered."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = {}

    def slowest_first(self, queries: Iterable[str]) -> list[str]:
        # A query never asked goes first: it may be the slowest.
        return sorted(queries, key=lambda promql: -self._seconds.get(promql, math.inf))

    def remember(self, seconds: dict[str, float]) -> None:
        # Replaced whole, so that only the queries of the catalog in force are kept.
        self._seconds = seconds


async def evaluate(
    catalog: Catalog,
    client: Upstream,
    *,
    at: float,
    window: str,
    max_concurrency: int,
    limits: TableLimits,
    max_bytes: int,
    source: Source = "background",
    recorded: RecordedRules | None = None,
    durations: QueryDurations | None = None,
) -> Snapshot:
    """Ask every catalog query at the one instant `at`, each PromQL once: the fields (a
    table's rows and columns), their lower-bound queries, the query checks and what their
    details name, and which of the metrics they read exist.

    The answers take at most `max_bytes` together (EXPORTER_MAX_REFRESH_BYTES).

    With `recorded`, the answers of the recording rules' newest fresh evaluation come first,
    and its instant is the snapshot's: the other queries are asked at it, or fail (mode on);
    while they do not answer (mode auto), they are looked for alongside the PromQL.
    With `durations`, the queries are sent slowest first, and their durations remembered.
    """
    gate = asyncio.Semaphore(max_concurrency)
    budget = ReadBudget(max_bytes)
    took: dict[str, float] = {}

    async def ask(promql: str) -> QueryResult | UpstreamError:
        async with gate:
            started = time.monotonic()
            try:
                return await client.query(promql, at, budget)
            except UpstreamError as error:
                return error.detached()
            finally:
                took[promql] = time.monotonic() - started

    distinct = catalog.queries(window)
    answers: dict[str, QueryResult | UpstreamError] = {}
    read: RecordedRead | None = None
    rows: Mapping[str, int] = {}
    if recorded is not None and recorded.awaited:
        read, found = await recorded.read(catalog, window, at, budget)
        answers.update(found.answers)
        rows = found.rows
        at = at if read.instant is None else read.instant
    if read is not None and read.mode == "on":
        answers |= {rule.promql: read.failure(rule) for rule in read.missing}
    # A table whose rules hold fewer rows than it keeps is asked, whatever the mode.
    remaining = [promql for promql in distinct if promql not in answers]
    if durations is not None:
        remaining = durations.slowest_first(remaining)
    # A task group rather than gather: cut short (a refresh's deadline), it cancels its queries
    # and waits until they have ended, so that no query of one refresh outlives it.
    async with asyncio.TaskGroup() as group:
        asking = [group.create_task(ask(promql)) for promql in remaining]
        looking = (
            group.create_task(recorded.look(catalog, window, at, budget))
            if recorded is not None and read is None
            else None
        )
    answers.update(zip(remaining, (task.result() for task in asking), strict=True))
    if looking is not None:
        read = looking.result()
    if durations is not None:
        durations.remember(took)
    names = catalog.sources()
    existence = Existence.from_answer(
        answers.get(catalog.existence_query(names)) if names else None,
        catalog.lookback_canonical,
        catalog.selector,
    )

    def field(spec: FieldSpec) -> FieldValue:
        if spec.kind is Kind.TABLE:
            columns = {name: answers[c.render(window)] for name, c in spec.columns.items()}
            shaped = shape_table(
                spec,
                answers[spec.render(window)],
                columns,
                at,
                existence=existence,
                limits=limits,
                total=rows.get(spec.render(window)),
            )
        else:
            bound = spec.render_lower_bound(window)
            shaped = shape(
                spec,
                answers[spec.render(window)],
                at,
                existence=existence,
                lower_bound=None if bound is None else answers[bound],
                max_entities=limits.max_entities,
            )
        if read is not None and set(_queries(spec, window)) <= read.answered:
            return replace(shaped, recorded=True)
        return shaped

    fields = {(domain, name): field(spec) for domain, name, spec in catalog.fields()}
    answered_by = Counter(a.upstream for a in answers.values() if isinstance(a, QueryResult))
    check_specs = {
        name: check.answer_spec() for name, check in catalog.checks.items() if check.query
    }
    return Snapshot(
        instant=at,
        window=window,
        fields=explain_zero_denominators(catalog, fields),
        upstream=client.display_url,
        catalog=catalog,
        source=source,
        answered_by=dict(answered_by),
        checks={
            name: shape(spec, answers[spec.render(window)], at, existence=existence)
            for name, spec in check_specs.items()
        },
        names={
            name: shape_names(
                check.names, answers[check.names.render(window)], at, limits.max_entities
            )
            for name, check in catalog.checks.items()
            if check.names is not None
        },
        sources=existence.counts,
        recorded=read,
    )


def carry_over(previous: Snapshot | None, latest: Snapshot, max_staleness: float) -> Snapshot:
    """Keep the previous value of every field whose query failed now, for `max_staleness` s.

    Past that the field is null with the failure as its reason, so an outage is never hidden.
    """
    if previous is None:
        return latest
    if not latest.reached_upstream:
        latest = replace(latest, last_data_instant=previous.data_instant)
    fields = dict(latest.fields)
    for key, field in latest.fields.items():
        before = previous.fields.get(key)
        if field.error is None or before is None or before.value is None:
            continue
        if latest.instant - before.evaluated_at <= max_staleness:
            fields[key] = replace(before, error=field.error, reason=None)
        else:
            age = round(latest.instant - before.evaluated_at)
            fields[key] = replace(field, reason=f"query failing for {age}s: {field.error}")
    return replace(latest, fields=fields)
