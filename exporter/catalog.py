"""The query catalog: which PromQL answers each field of the summary, loaded from YAML."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from importlib import resources
from pathlib import Path
from string import Template
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    PositiveInt,
    PrivateAttr,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from exporter.durations import format_duration, parse_duration
from exporter.errors import CatalogError

BUILTIN = "catalog.yaml"
WINDOW_PLACEHOLDER = "window"
# Placeholders every template may use besides the catalog's own definitions. The window
# changes per request; the others are fixed when the catalog is loaded (`Catalog.bind`).
SELECTOR_PLACEHOLDER = "selector"
LOOKBACK_PLACEHOLDER = "lookback"
LOOKBACK_SECONDS_PLACEHOLDER = "lookback_seconds"
BUILTIN_PLACEHOLDERS = frozenset(
    {WINDOW_PLACEHOLDER, SELECTOR_PLACEHOLDER, LOOKBACK_PLACEHOLDER, LOOKBACK_SECONDS_PLACEHOLDER}
)
SELF_METRICS_PREFIX = "summary_exporter_"

ENVIRONMENT_INFO = "summary_environment_info"

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
# A Prometheus label name, for the labels a query's answer is read by.
LabelName = Annotated[str, StringConstraints(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$", max_length=64)]
MetricName = Annotated[
    str, StringConstraints(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$", max_length=200)
]
# A field named by its domain: `http.error_rate`.
FieldRef = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", max_length=129)
]


class Kind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    LABELS = "labels"
    # Rows of named columns, one row per value of an entity label (a provider, a model).
    TABLE = "table"


class ColumnKind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    # The value of a label of the column's answer (a breaker's state, a status).
    LABEL = "label"


class Unit(StrEnum):
    COUNT = "count"
    MS = "ms"
    PERCENT = "percent"
    PER_MINUTE = "per_minute"
    SCORE = "score"
    TOKENS = "tokens"
    CREDITS = "credits"
    USD = "usd"


# How a JSON unit becomes the gauge's base unit: the factor, and the gauge name's suffix.
_BASE_UNITS: dict[Unit, tuple[float, str, str]] = {
    Unit.MS: (0.001, "_ms", "_seconds"),
    Unit.PERCENT: (0.01, "_rate", "_ratio"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LowerBound(_Strict):
    """When a field's answer is only a lower bound of the true value, and why."""

    when: str = Field(min_length=1)
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _valid_query(self, info: ValidationInfo) -> LowerBound:
        _check_template(self.when, info)
        return self


def _base_suffix(name: str, unit: Unit | None) -> str:
    """A field's or column's name in its gauge: `*_ms` as `*_seconds`, `*_rate` as `*_ratio`."""
    if unit is None or unit not in _BASE_UNITS:
        return name
    _, json_suffix, base_suffix = _BASE_UNITS[unit]
    return name.removesuffix(json_suffix) + base_suffix


def _factor(unit: Unit | None) -> float:
    return _BASE_UNITS[unit][0] if unit is not None and unit in _BASE_UNITS else 1.0


class ColumnSpec(_Strict):
    """One column of a table: PromQL answering one series per row's entity, whose value (or,
    for kind label, one of whose labels) is the row's cell."""

    query: str = Field(min_length=1)
    kind: ColumnKind
    unit: Unit | None = None
    help: str = Field(min_length=1)
    no_series_means_zero: bool = False
    when_empty: str = "the query returned no series for this row"
    label: LabelName | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> ColumnSpec:
        _check_template(self.query, info)
        if self.kind is ColumnKind.LABEL:
            if self.label is None:
                raise ValueError("a label column needs `label`: the label holding its value")
            if self.unit is not None or self.no_series_means_zero:
                raise ValueError("`unit` and `no_series_means_zero` apply to numeric columns")
        elif self.label is not None:
            raise ValueError("`label` applies to label columns only")
        elif self.unit is None:
            raise ValueError("a numeric column needs `unit`")
        return self

    def render(self, window: str) -> str:
        return render(self.query, window)

    def sources(self) -> tuple[str, ...]:
        return metric_names(self.query)

    @property
    def numeric(self) -> bool:
        return self.kind is not ColumnKind.LABEL

    @property
    def gauge_factor(self) -> float:
        return _factor(self.unit)

    def _bound(self, write: Callable[[str], str]) -> ColumnSpec:
        return self.model_copy(update={"query": write(self.query)})


class FieldSpec(_Strict):
    """One field of the summary and the PromQL that answers it.

    For kind table, `query` lists the rows: one series per value of the entity label `label`,
    valued by what orders them (`order`); each of `columns` is one more query.
    """

    query: str = Field(min_length=1)
    kind: Kind
    unit: Unit
    help: str = Field(min_length=1)
    no_series_means_zero: bool = False
    when_empty: str = "the query returned no series"
    denominator: Name | None = None
    when_zero_denominator: str | None = None
    label: LabelName | None = None
    gauge: Name | None = None
    lower_bound: LowerBound | None = None
    columns: dict[Name, ColumnSpec] = Field(default_factory=dict)
    order: Literal["ascending", "descending"] | None = None
    limit: PositiveInt | Literal["top_models"] | None = None
    # Metrics the gateway writes whenever it runs the code that would write this field's
    # metrics, whose labelled series only appear with their first event: their series are
    # enough for an empty answer to be a true 0.
    written_with: tuple[MetricName, ...] = ()

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> FieldSpec:
        _check_template(self.query, info)
        if self.kind in (Kind.LABELS, Kind.TABLE) and self.lower_bound is not None:
            raise ValueError("`lower_bound` applies to numbers, not to a list")
        if self.kind is Kind.LABELS and (self.label is None or self.gauge is None):
            raise ValueError("a labels field needs `label` (what to list) and `gauge` (its values)")
        if self.kind is Kind.TABLE:
            self._consistent_table()
        elif self.columns or self.order is not None or self.limit is not None:
            raise ValueError("`columns`, `order` and `limit` apply to kind table only")
        elif self.kind is not Kind.LABELS and self.label is not None:
            raise ValueError("`label` applies to kind labels and table only")
        if (self.denominator is None) != (self.when_zero_denominator is None):
            raise ValueError("`denominator` and `when_zero_denominator` go together")
        return self

    def _consistent_table(self) -> None:
        if self.label is None or not self.columns or self.order is None:
            raise ValueError("a table needs `label` (the entity of a row), `order` and `columns`")
        if self.gauge is not None or self.denominator is not None:
            raise ValueError("`gauge` and `denominator` do not apply to a table")
        if self.label in self.columns:
            raise ValueError(f"column {self.label!r} would hide the row's {self.label}")

    def render(self, window: str) -> str:
        """The PromQL for one window: a window reaches PromQL only as the canonical rendering
        of its parsed length (`7d` as `1w`), never as written; ValueError when it is none."""
        return render(self.query, window)

    @property
    def windowed(self) -> bool:
        """Whether a query of the field looks back over the window, rather than at one instant."""
        return any(
            WINDOW_PLACEHOLDER in Template(template).get_identifiers()
            for template in self.templates()
        )

    def render_lower_bound(self, window: str) -> str | None:
        """The PromQL that answers when this field's value is only a lower bound, if any."""
        return None if self.lower_bound is None else render(self.lower_bound.when, window)

    def sources(self) -> tuple[str, ...]:
        """The metric names the field's queries read, in order of first use, and those it is
        written with."""
        names = [*metric_names(self.query), *self.written_with]
        names += [name for column in self.columns.values() for name in column.sources()]
        return tuple(dict.fromkeys(names))

    def column_sources(self, column: ColumnSpec) -> tuple[str, ...]:
        """The metrics whose series let an empty cell of `column` be a true 0."""
        return tuple(dict.fromkeys([*column.sources(), *self.written_with]))

    def templates(self) -> list[str]:
        return (
            [self.query]
            + ([self.lower_bound.when] if self.lower_bound else [])
            + [column.query for column in self.columns.values()]
        )

    def _bound(self, write: Callable[[str], str]) -> FieldSpec:
        update: dict[str, Any] = {"query": write(self.query)}
        if self.lower_bound is not None:
            update["lower_bound"] = self.lower_bound.model_copy(
                update={"when": write(self.lower_bound.when)}
            )
        if self.columns:
            update["columns"] = {name: c._bound(write) for name, c in self.columns.items()}
        return self.model_copy(update=update)

    def gauge_name(self, domain: str, field: str) -> str:
        """`summary_<domain>_<field>` in base units; a trailing `_total` is dropped, since
        that suffix belongs to counters (`tokens_used_total` is `summary_models_tokens_used`)."""
        suffix = self.gauge or _base_suffix(field, self.unit)
        return f"summary_{domain}_{suffix}".removesuffix("_total")

    def column_gauge_name(self, domain: str, field: str, column: str) -> str:
        """A table column's gauge, `summary_<domain>_<table>_<column>` in base units, with the
        row's entity as a label."""
        suffix = _base_suffix(column, self.columns[column].unit)
        return f"summary_{domain}_{field}_{suffix}".removesuffix("_total")

    def gauge_names(self, domain: str, field: str) -> list[str]:
        """Every gauge the field is exported as: its own, or one per column of a table."""
        if self.kind is Kind.TABLE:
            return [self.column_gauge_name(domain, field, column) for column in self.columns]
        return [self.gauge_name(domain, field)]

    @property
    def gauge_factor(self) -> float:
        """Multiplies the JSON value into the gauge's base unit (seconds, ratio)."""
        return _factor(self.unit)


class DomainSpec(_Strict):
    help: str = ""
    fields: dict[Name, FieldSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _denominators_exist(self) -> DomainSpec:
        for name, spec in self.fields.items():
            if spec.denominator is not None and spec.denominator not in self.fields:
                raise ValueError(f"{name}: denominator {spec.denominator!r} is not a field here")
        return self


class Threshold(_Strict):
    """A limit a check's value is past: `above`, `at_least`, `below` or `at_most` a number."""

    above: FiniteFloat | None = None
    at_least: FiniteFloat | None = None
    below: FiniteFloat | None = None
    at_most: FiniteFloat | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Threshold:
        if len(self.model_fields_set) != 1 or self.limit_or_none is None:
            raise ValueError("give exactly one of `above`, `at_least`, `below` or `at_most`")
        return self

    @property
    def limit_or_none(self) -> float | None:
        return next(
            (v for v in (self.above, self.at_least, self.below, self.at_most) if v is not None),
            None,
        )

    @property
    def limit(self) -> float:
        limit = self.limit_or_none
        assert limit is not None  # the validator requires one of them
        return limit

    @property
    def word(self) -> str:
        """How the limit reads: `above`, `at_least`, `below` or `at_most`."""
        return next(iter(self.model_fields_set))

    @property
    def upward(self) -> bool:
        """Whether values past this limit are higher than it (above, at least)."""
        return self.above is not None or self.at_least is not None

    def crossed_by(self, value: float) -> bool:
        limit = self.limit
        return {
            "above": value > limit,
            "at_least": value >= limit,
            "below": value < limit,
            "at_most": value <= limit,
        }[self.word]

    def document(self) -> dict[str, float]:
        return {self.word: self.limit}


_QUERY_CHECK_KEYS = frozenset({"unit", "no_series_means_zero", "when_empty"})


class CheckNames(_Strict):
    """What a check's detail names: the values of `label` in a query's answer, highest value
    first (ties by name), e.g. the providers whose breaker is open ("open: groq")."""

    query: str = Field(min_length=1)
    label: LabelName
    prefix: str = Field(min_length=1, max_length=40)
    # Each name with its value, in the check's unit: "errors: groq 100 %, openai 16.67 %".
    values: bool = False

    @model_validator(mode="after")
    def _valid_query(self, info: ValidationInfo) -> CheckNames:
        _check_template(self.query, info)
        return self

    def render(self, window: str) -> str:
        return render(self.query, window)


class CheckSpec(_Strict):
    """A health check: a summary field, or its own PromQL, against degraded/critical limits."""

    help: str = Field(min_length=1)
    field: FieldRef | None = None
    percent_of: FieldRef | None = None
    query: str | None = Field(default=None, min_length=1)
    unit: Unit | None = None
    no_series_means_zero: bool = False
    when_empty: str = "the query returned no series"
    production_only: bool = False
    liveness: bool = False
    degraded: Threshold | None = None
    critical: Threshold | None = None
    names: CheckNames | None = None

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> CheckSpec:
        if (self.field is None) == (self.query is None):
            raise ValueError("give exactly one of `field` (domain.field) or `query` (PromQL)")
        if self.query is not None:
            _check_template(self.query, info)
        elif answer_keys := sorted(self.model_fields_set & _QUERY_CHECK_KEYS):
            raise ValueError(f"{answer_keys} apply to query checks; a field check reads its field")
        if self.percent_of is not None and self.field is None:
            raise ValueError("`percent_of` applies to field checks")
        if self.degraded is None and self.critical is None:
            raise ValueError("give `degraded`, `critical` or both")
        if self.degraded and self.critical:
            if self.degraded.upward != self.critical.upward:
                raise ValueError("the degraded and critical limits point in different directions")
            if self.degraded.upward and self.degraded.limit > self.critical.limit:
                raise ValueError("the degraded limit is above the critical one")
            if not self.degraded.upward and self.degraded.limit < self.critical.limit:
                raise ValueError("the degraded limit is below the critical one")
        return self

    def answer_spec(self) -> FieldSpec:
        """How a query check's answer is shaped: like a number field, never invented."""
        assert self.query is not None  # only query checks have an answer of their own
        return FieldSpec(
            query=self.query,
            kind=Kind.NUMBER,
            unit=self.unit or Unit.COUNT,
            help=self.help,
            no_series_means_zero=self.no_series_means_zero,
            when_empty=self.when_empty,
        )

    def _bound(self, write: Callable[[str], str]) -> CheckSpec:
        update: dict[str, Any] = {}
        if self.query is not None:
            update["query"] = write(self.query)
        if self.names is not None:
            update["names"] = self.names.model_copy(update={"query": write(self.names.query)})
        return self.model_copy(update=update)


class Catalog(_Strict):
    # How far back a metric must have series for a count that reads it to be 0 rather than
    # null, and for the gateway's liveness; `$lookback` (and `$lookback_seconds`) in queries.
    lookback: str = "1h"
    # Named pieces of PromQL, used as `$name` in queries (and in later definitions); each is
    # put in parentheses where it is used.
    definitions: dict[Name, str] = Field(default_factory=dict)
    domains: dict[Name, DomainSpec] = Field(min_length=1)
    checks: dict[Name, CheckSpec] = Field(default_factory=dict)
    # The label matchers bound into every query (EXPORTER_SELECTOR), canonical; see bind().
    _selector: str = PrivateAttr(default="")

    @field_validator("lookback")
    @classmethod
    def _valid_lookback(cls, lookback: str) -> str:
        parse_duration(lookback)
        return lookback

    @field_validator("definitions")
    @classmethod
    def _definitions_use_earlier_ones(cls, definitions: dict[str, str]) -> dict[str, str]:
        known = set(BUILTIN_PLACEHOLDERS)
        for name, definition in definitions.items():
            if name in BUILTIN_PLACEHOLDERS:
                raise ValueError(f"{name}: the name of a built-in placeholder")
            if not Template(definition).is_valid() or not _balanced(definition):
                raise ValueError(f"{name}: malformed placeholder, brackets or quotes")
            unknown = _unknown_placeholders(definition, known)
            if unknown:
                raise ValueError(
                    f"{name}: uses {unknown}, which are neither built in nor defined before it"
                )
            known.add(name)
        return definitions

    @model_validator(mode="after")
    def _checks_read_numeric_fields(self) -> Catalog:
        for name, check in self.checks.items():
            for reference in (check.field, check.percent_of):
                if reference is None:
                    continue
                spec = self.field(reference)
                if spec is None:
                    raise ValueError(f"checks.{name}: {reference} is not a field of the catalog")
                if spec.kind in (Kind.LABELS, Kind.TABLE):
                    raise ValueError(f"checks.{name}: {reference} is a list, not a number")
        return self

    @model_validator(mode="after")
    def _distinct_gauges(self) -> Catalog:
        seen: dict[str, str] = {}
        for domain, name, spec in self.fields():
            for gauge in spec.gauge_names(domain, name):
                if gauge.startswith(SELF_METRICS_PREFIX) or gauge == ENVIRONMENT_INFO:
                    raise ValueError(
                        f"{domain}.{name}: gauge {gauge} would clash with self-metrics"
                    )
                if gauge in seen:
                    raise ValueError(
                        f"{domain}.{name}: gauge {gauge} is also {seen[gauge]}'s gauge"
                    )
                seen[gauge] = f"{domain}.{name}"
        return self

    @property
    def selector(self) -> str:
        return self._selector

    @property
    def lookback_canonical(self) -> str:
        return format_duration(parse_duration(self.lookback))

    def bind(self, selector: str = "") -> Catalog:
        """This catalog with `$selector`, `$lookback` and the definitions written into every
        query, so that only `$window` is left; `selector` must be canonical matchers."""
        lookback_ms = parse_duration(self.lookback)

        def write(template: str) -> str:
            if not selector:
                # `x{a="b",$selector}` must not become `x{a="b",}`: valid, but not for people.
                template = _NO_SELECTOR.sub("", template)
            return _substitute(template, values)

        values = {
            SELECTOR_PLACEHOLDER: selector,
            LOOKBACK_PLACEHOLDER: format_duration(lookback_ms),
            LOOKBACK_SECONDS_PLACEHOLDER: f"{lookback_ms / 1000:g}",
        }
        for name, definition in self.definitions.items():
            values[name] = f"({write(definition)})"
        domains = {
            domain: spec.model_copy(
                update={"fields": {n: f._bound(write) for n, f in spec.fields.items()}}
            )
            for domain, spec in self.domains.items()
        }
        checks = {name: check._bound(write) for name, check in self.checks.items()}
        bound = self.model_copy(update={"domains": domains, "checks": checks})
        bound._selector = selector
        return bound

    def field(self, reference: str) -> FieldSpec | None:
        """The field named `domain.field`, or None."""
        domain, _, name = reference.partition(".")
        domain_spec = self.domains.get(domain)
        return None if domain_spec is None else domain_spec.fields.get(name)

    def fields(self) -> list[tuple[str, str, FieldSpec]]:
        """(domain, field, spec) for every field, in catalog order."""
        return [
            (domain, name, spec)
            for domain, domain_spec in self.domains.items()
            for name, spec in domain_spec.fields.items()
        ]

    def sources(self) -> tuple[str, ...]:
        """Every metric name the fields and query checks read, in order of first use."""
        names = [name for _, _, spec in self.fields() for name in spec.sources()]
        names += [
            name
            for check in self.checks.values()
            if check.query is not None
            for name in metric_names(check.query)
        ]
        return tuple(dict.fromkeys(names))

    def queries(self, window: str) -> list[str]:
        """Every distinct PromQL one evaluation asks at its instant: the fields' (a table's
        rows and columns), their lower bounds, the query checks' and their names', and which
        of the metrics they read exist."""
        asked = [template for _, _, spec in self.fields() for template in spec.templates()]
        for check in self.checks.values():
            asked += [check.query] if check.query is not None else []
            asked += [check.names.query] if check.names is not None else []
        rendered = [render(template, window) for template in asked]
        names = self.sources()
        return list(dict.fromkeys(rendered + ([self.existence_query(names)] if names else [])))

    def existence_query(self, names: tuple[str, ...], lookback: str | None = None) -> str:
        """PromQL counting, per metric name, the series (under the selector) with a sample in
        the lookback: one bounded question for every name at once."""
        return self.series_query("|".join(names), lookback)

    def range_query(self, spec: FieldSpec, window: str) -> str:
        """The field's PromQL for a range query (a sparkline). A count answers 0 at each step
        where its query has no series but one of the metrics it reads has series within the
        lookback, as the field itself would at that instant; any other step without series
        stays without a value."""
        promql = spec.render(window)
        names = spec.sources()
        numeric = spec.kind in (Kind.INTEGER, Kind.NUMBER)
        if not (numeric and spec.no_series_means_zero and names):
            return promql
        return f"({promql}) or on () 0 * sum({self.existence_query(names)})"

    def series_query(self, name_pattern: str, lookback: str | None = None) -> str:
        """As existence_query, for every metric whose name matches a regular expression."""
        span = lookback or self.lookback_canonical
        return f"count by (__name__) (last_over_time({self._named(name_pattern)}[{span}]))"

    def instant_query(self, names: tuple[str, ...]) -> str:
        """The series of these metrics (under the selector) at an instant, as one selector."""
        return self._named("|".join(names))

    def _named(self, name_pattern: str) -> str:
        matchers = [f"__name__=~{json.dumps(name_pattern)}"]
        matchers += [self._selector] if self._selector else []
        return f"{{{','.join(matchers)}}}"

    def shown(self, name: str) -> str:
        """A metric as selected here: with the selector's matchers when there are any."""
        return f"{name}{{{self._selector}}}" if self._selector else name


# The validation context of a catalog document: the names of its definitions.
DEFINITIONS = "definitions"


def _check_template(query: str, info: ValidationInfo | None = None) -> None:
    if not Template(query).is_valid():
        raise ValueError("query has a malformed '$' placeholder (use $window, or $$ for '$')")
    known = set(BUILTIN_PLACEHOLDERS)
    if info is not None and isinstance(info.context, dict):
        known |= set(info.context.get(DEFINITIONS, ()))
    unknown = _unknown_placeholders(query, known)
    if unknown:
        allowed = ", ".join(f"${name}" for name in sorted(known))
        raise ValueError(f"query uses unknown placeholders {unknown}; known: {allowed}")
    if not _balanced(query):
        raise ValueError("query has unbalanced brackets or quotes")


def _unknown_placeholders(template: str, known: set[str]) -> list[str]:
    return sorted(set(Template(template).get_identifiers()) - known)


# A `$selector` placeholder with its comma, or with its braces after a metric name, for when
# there is no selector to write.
_NO_SELECTOR = re.compile(
    r"\s*,\s*\$(?:selector\b|\{selector\})"
    r"|\$(?:selector\b|\{selector\})\s*,\s*"
    r"|(?<=[a-zA-Z0-9_:])\{\s*\$(?:selector\b|\{selector\})\s*\}"
)


def _substitute(template: str, values: Mapping[str, str]) -> str:
    """`template` with the placeholders named in `values` replaced; `$$` and others kept."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("named") or match.group("braced")
        return values[name] if name is not None and name in values else match.group()

    return Template.pattern.sub(replace, template)


# Every query of every refresh is rendered: each (template, window) pair once is enough.
@functools.lru_cache(maxsize=4096)
def render(template: str, window: str) -> str:
    """A bound template's PromQL for one window, written as the canonical rendering of its
    parsed length; ValueError when it is no duration."""
    canonical = format_duration(parse_duration(window))
    return Template(template).substitute({WINDOW_PLACEHOLDER: canonical})


_IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Words of PromQL that are never metric names: binary operators, modifiers, aggregations.
_OPERATORS = frozenset(
    {"and", "or", "unless", "bool", "offset", "atan2", "Inf", "NaN", "inf", "nan"}
)
_AGGREGATIONS = frozenset(
    {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
     "topk", "quantile"}
)  # fmt: skip
# Modifiers followed by a list of label names, which are not metric names either.
_LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_CLOSING = {"{": "}", "[": "]", "(": ")"}


# Asked for every field of every refresh, of the few queries of a catalog: read each once.
@functools.lru_cache(maxsize=4096)
def metric_names(promql: str) -> tuple[str, ...]:
    """The metric names a query selects, in order of first use: `x`, `x{...}` and `x[5m]`, not
    functions, operators, label names, strings or placeholders."""
    names: list[str] = []
    position = 0
    while position < len(promql):
        char = promql[position]
        if char in "\"'`":
            position = _after_string(promql, position)
            continue
        if char in "{[":
            # Label matchers and durations: nothing in them is a metric name.
            position = _after_group(promql, position)
            continue
        previous = promql[position - 1] if position else " "
        match = _IDENTIFIER.match(promql, position)
        if match is None or previous.isalnum() or previous in "_:.$":
            position += 1
            continue
        word = match.group()
        position = match.end()
        following = promql[position:].lstrip()
        if word in _LABEL_LISTS:
            if following.startswith("("):
                position = _after_group(promql, promql.index("(", position))
        elif word in _OPERATORS or word in _AGGREGATIONS or following.startswith("("):
            continue
        elif word not in names:
            names.append(word)
    return tuple(names)


def _after_group(promql: str, start: int) -> int:
    """The position after the bracket opened at `start` closes (strings skipped)."""
    closing = _CLOSING[promql[start]]
    position = start + 1
    while position < len(promql):
        char = promql[position]
        if char in "\"'`":
            position = _after_string(promql, position)
            continue
        if char == closing:
            return position + 1
        position += 1
    return position


def _after_string(promql: str, start: int) -> int:
    quote = promql[start]
    position = start + 1
    while position < len(promql):
        if promql[position] == "\\" and quote != "`":
            position += 2
            continue
        if promql[position] == quote:
            return position + 1
        position += 1
    return position


def _balanced(query: str) -> bool:
    """Brackets balance outside string literals; catches most broken templates at start."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for char in query:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack and quote is None


def _location(loc: tuple[int | str, ...]) -> str:
    # pydantic appends the validator's name for errors raised in model validators; drop it.
    return ".".join(
        str(part) for part in loc if not re.fullmatch(r"function-after\[.*\]", str(part))
    )


def parse_catalog(text: str, source: str, selector: str = "") -> Catalog:
    """A validated catalog bound to `selector` (canonical label matchers, see Catalog.bind),
    or CatalogError naming `source` and every invalid field."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CatalogError(f"catalog {source}: not valid YAML: {error}") from None
    try:
        definitions = data.get(DEFINITIONS) if isinstance(data, dict) else None
        names = list(definitions) if isinstance(definitions, dict) else []
        return Catalog.model_validate(data, context={DEFINITIONS: names}).bind(selector)
    except ValidationError as error:
        problems = [
            f"{_location(item['loc']) or '(top level)'}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
        raise CatalogError(f"catalog {source}: " + "; ".join(problems)) from None


def load_catalog(path: Path | None = None, selector: str = "") -> Catalog:
    """The catalog at `path`, or the built-in one shipped in the package, bound to `selector`."""
    if path is None:
        text = resources.files("exporter").joinpath(BUILTIN).read_text(encoding="utf-8")
        return parse_catalog(text, f"(built-in {BUILTIN})", selector)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogError(f"catalog {path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CatalogError(f"catalog {path}: not UTF-8 text") from None
    return parse_catalog(text, str(path), selector)
