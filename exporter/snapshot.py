"""Snapshots: the catalog evaluated at one pinned instant, shaped into the summary document.

PromQL does the arithmetic; this module only turns each query's answer into a field value
(or a null with its reason) and the fields into the JSON document.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from exporter.catalog import Catalog, FieldSpec, Kind
from exporter.errors import UpstreamError
from exporter.prometheus import QueryResult, Upstream
from exporter.strict_json import encode

Value = int | float | list[str] | None
FieldKey = tuple[str, str]
Source = Literal["background", "on_demand"]


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

    @property
    def stale(self) -> bool:
        return self.error is not None and self.value is not None


@dataclass(frozen=True)
class Snapshot:
    """Every field of a catalog for one attempt at one instant and window."""

    instant: float
    window: str
    fields: Mapping[FieldKey, FieldValue]
    upstream: str
    source: Source = "background"
    # Which upstream answered how many of this attempt's queries (failover shows here).
    answered_by: Mapping[str, int] = dataclasses.field(default_factory=dict)
    # Answers of the catalog's query checks, by check name; never fields, never gauges.
    checks: Mapping[str, FieldValue] = dataclasses.field(default_factory=dict)
    # Encoded documents by domain selection, around the age: serving costs a clock read.
    _encoded: dict[tuple[str, ...] | None, EncodedDocument] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def reached_upstream(self) -> bool:
        return any(field.error is None for field in self.fields.values())

    @property
    def stale(self) -> bool:
        return not self.reached_upstream or any(f.stale for f in self.fields.values())

    @property
    def data_instant(self) -> float:
        """The instant of the newest value: this attempt's, unless nothing came back from it."""
        if self.reached_upstream:
            return self.instant
        return max((f.evaluated_at for f in self.fields.values() if f.stale), default=self.instant)

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
        stale_fields: dict[str, dict[str, Any]] = {}
        warnings: dict[str, list[str]] = {}
        for (domain, name), field in self.fields.items():
            if wanted is not None and domain not in wanted:
                continue
            metrics.setdefault(domain, {})[name] = field.value
            key = f"{domain}.{name}"
            if field.value is None and field.reason is not None:
                nulls[key] = field.reason
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
            "stale_fields": stale_fields,
            "warnings": warnings,
            "upstream": {
                "url": self.upstream,
                "up": self.reached_upstream,
                "answered_by": sorted(self.answered_by),
            },
            **(about or {}),
        }

    def encode(
        self,
        now: float,
        domains: Iterable[str] | None = None,
        about: Mapping[str, Any] | None = None,
    ) -> bytes:
        """The document as strict JSON bytes."""
        encoded = self.encoded(domains, about)
        if encoded is None:
            return encode(self.document(now, domains, about))
        return encoded.at(now)

    def encoded(
        self, domains: Iterable[str] | None = None, about: Mapping[str, Any] | None = None
    ) -> EncodedDocument | None:
        """The document encoded once, for every request until the next snapshot; None when
        stale fields carry their own ages, so that each answer is built when asked.

        `about` is encoded with the rest: it must not change over a snapshot's life.
        """
        selection = None if domains is None else tuple(domains)
        encoded = self._encoded.get(selection)
        if encoded is None:
            if any(f.stale for f in self.fields.values()):
                return None
            document = self.document(self.instant, selection, about)
            head, _, tail = encode(document | {"age_seconds": _AGE_MARK}).partition(
                encode(_AGE_MARK)
            )
            # Without stale fields, the data instant is this attempt's own.
            encoded = self._encoded[selection] = EncodedDocument(head, tail, self.instant)
        return encoded


_AGE_MARK = "\x00age\x00"
# Within this distance of a body's age, an age still rounds to the same millisecond: half of
# one, less room for the float error of epoch seconds (under a microsecond).
_SAME_AGE_S = 0.00049


class EncodedDocument:
    """A document's bytes around its age, and the last body made: the age has a resolution of
    one millisecond, so the requests of one millisecond share one body, with no work each."""

    __slots__ = ("_at", "_body", "_head", "_tail", "_valid_from", "_valid_until")

    def __init__(self, head: bytes, tail: bytes, at: float) -> None:
        self._head, self._tail, self._at = head, tail, at
        self._body = b""
        self._valid_from = self._valid_until = -math.inf

    def at(self, now: float) -> bytes:
        if not self._valid_from <= now < self._valid_until:
            age = _age(now, self._at)
            self._body = b"".join((self._head, repr(age).encode(), self._tail))
            self._valid_from = self._at + age - _SAME_AGE_S
            self._valid_until = self._at + age + _SAME_AGE_S
        return self._body


def format_instant(at: float) -> str:
    """RFC 3339 in UTC, with milliseconds only when the instant has them."""
    moment = datetime.fromtimestamp(at, tz=UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


def _age(now: float, at: float) -> float:
    return round(max(0.0, now - at), 3)


def explain(
    catalog: Catalog, snapshot: Snapshot, domains: Iterable[str] | None = None
) -> dict[str, dict[str, str]]:
    """Per field: the PromQL as asked and the instant of its value, to paste into Prometheus."""
    wanted = None if domains is None else set(domains)
    return {
        f"{domain}.{name}": {
            "promql": spec.render(snapshot.window),
            "time": format_instant(snapshot.fields[(domain, name)].evaluated_at),
            "unit": spec.unit.value,
        }
        for domain, name, spec in catalog.fields()
        if (wanted is None or domain in wanted) and (domain, name) in snapshot.fields
    }


def shape(spec: FieldSpec, outcome: QueryResult | UpstreamError, at: float) -> FieldValue:
    """One query's answer as a field value; never a number Prometheus did not give."""
    if isinstance(outcome, UpstreamError):
        return FieldValue(None, at, reason=f"query failed: {outcome}", error=outcome)
    warnings = outcome.warnings
    samples = outcome.samples
    if spec.kind is Kind.LABELS:
        assert spec.label is not None  # the catalog guarantees a label for kind labels
        ranked = sorted(
            ((s.labels.get(spec.label, ""), s.value) for s in samples if math.isfinite(s.value)),
            key=lambda pair: (-pair[1], pair[0]),
        )
        if not ranked and not spec.no_series_means_zero:
            return FieldValue(None, at, reason=spec.when_empty, warnings=warnings)
        return FieldValue([name for name, _ in ranked], at, series=tuple(ranked), warnings=warnings)
    if not samples:
        if spec.no_series_means_zero:
            return FieldValue(0, at, warnings=warnings)
        return FieldValue(None, at, reason=spec.when_empty, warnings=warnings)
    if len(samples) > 1:
        reason = f"query returned {len(samples)} series where one was expected (aggregate it)"
        return FieldValue(None, at, reason=reason, warnings=warnings)
    value = samples[0].value
    if math.isnan(value):
        return FieldValue(None, at, reason="Prometheus returned NaN", warnings=warnings)
    if math.isinf(value):
        sign = "+" if value > 0 else "-"
        return FieldValue(None, at, reason=f"Prometheus returned {sign}Inf", warnings=warnings)
    if spec.kind is Kind.INTEGER:
        if not value.is_integer():
            reason = f"Prometheus returned {value!r} for a count (wrap the query in round())"
            return FieldValue(None, at, reason=reason, warnings=warnings)
        return FieldValue(int(value), at, warnings=warnings)
    return FieldValue(value, at, warnings=warnings)


def explain_zero_denominators(
    catalog: Catalog, fields: dict[FieldKey, FieldValue]
) -> dict[FieldKey, FieldValue]:
    """Replace the reason of a null ratio whose declared denominator is 0 with the 0/0 text."""
    explained = dict(fields)
    for domain, name, spec in catalog.fields():
        field = fields[(domain, name)]
        if spec.denominator is None or field.value is not None or field.error is not None:
            continue
        denominator = fields[(domain, spec.denominator)]
        if denominator.value == 0 and denominator.error is None:
            explained[(domain, name)] = replace(field, reason=spec.when_zero_denominator)
    return explained


async def evaluate(
    catalog: Catalog,
    client: Upstream,
    *,
    at: float,
    window: str,
    max_concurrency: int,
    source: Source = "background",
) -> Snapshot:
    """Ask every catalog query, checks included, at the one instant `at`; each PromQL once."""
    rendered = {(domain, name): spec.render(window) for domain, name, spec in catalog.fields()}
    check_specs = {
        name: check.answer_spec() for name, check in catalog.checks.items() if check.query
    }
    check_queries = {name: spec.render(window) for name, spec in check_specs.items()}
    gate = asyncio.Semaphore(max_concurrency)

    async def ask(promql: str) -> QueryResult | UpstreamError:
        async with gate:
            try:
                return await client.query(promql, at)
            except UpstreamError as error:
                return error

    distinct = list(dict.fromkeys([*rendered.values(), *check_queries.values()]))
    answers = dict(zip(distinct, await asyncio.gather(*(ask(q) for q in distinct)), strict=True))
    fields = {
        (domain, name): shape(spec, answers[rendered[(domain, name)]], at)
        for domain, name, spec in catalog.fields()
    }
    answered_by = Counter(a.upstream for a in answers.values() if isinstance(a, QueryResult))
    return Snapshot(
        instant=at,
        window=window,
        fields=explain_zero_denominators(catalog, fields),
        upstream=client.display_url,
        source=source,
        answered_by=dict(answered_by),
        checks={
            name: shape(spec, answers[check_queries[name]], at)
            for name, spec in check_specs.items()
        },
    )


def carry_over(previous: Snapshot | None, latest: Snapshot, max_staleness: float) -> Snapshot:
    """Keep the previous value of every field whose query failed now, for `max_staleness` s.

    Past that the field is null with the failure as its reason, so an outage is never hidden.
    """
    if previous is None:
        return latest
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
