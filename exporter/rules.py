"""Recording rules that answer the catalog's queries inside Prometheus, and how the exporter
recognises their series.

`summary-exporter rules` prints one rule group per window (and selector): one rule per
distinct query the exporter asks at each refresh, so that a fleet of exporters reads a few
hundred recorded series instead of evaluating the catalog's PromQL over the gateway's raw
series each (exporter/recorded.py reads them). However many providers and models the gateway
has, the rules record about as many series as the exporter shows:

- An answer with a series per entity (a table's rows, a check's names) is recorded for its
  first TIE_ROOM times the rows the exporter keeps (EXPORTER_MAX_ENTITIES, or the table's
  `limit` such as EXPORTER_TOP_MODELS, when the rules are generated), in the exporter's order:
  room for ties with the last row kept, which the exporter breaks by name. A table's columns
  are recorded for those rows only, and `summary:<domain>_<table>:count` says how many rows
  the table has. Each rule computes its rows itself, never from another rule's result:
  vmalert writes a rule's result asynchronously, so a later rule of the group would not see
  it at the same evaluation.

Each rule records its query's answer exactly as Prometheus gives it, in the JSON's units, so
that the exporter shapes a recorded answer as it would the raw one, to the last bit:

- Names: a field as its gauge on `/metrics` with a colon after `summary`
  (`summary:http_total_requests`, `summary:models_requests{model}`), except for values in
  milliseconds or percent, which are recorded as the JSON has them under names that say so
  (`summary:http_avg_latency_ms`, `summary:http_error_rate_percent`): dividing by 1000 or 100
  loses the last bit of about one value in three, which multiplying back cannot restore.
  A table's rows are `summary:<domain>_<table>` and its columns
  `summary:<domain>_<table>_<column>`, with the row's entity label; a lower bound's query
  `..._lower_bound`; a query check `summary:check_<name>`, what its detail names
  `summary:check_<name>_names`; and which metrics exist `summary:metric_series{metric}`.
- Labels: `window` on every answer; `selector`, the canonical EXPORTER_SELECTOR the rules were
  generated with (none without one), so that the rules of several environments in one
  Prometheus never mix; `fingerprint`, a hash of the rule's expression and selector, so that
  the exporter reads only rules computing exactly its own queries (another catalog, another
  version, another selector or other limits of rows have other fingerprints).
- Every evaluation records, beside the answer, one series without a `window` label (value
  0): the exporter tells "the rule ran and found nothing" from "no rule ran", and queries
  that select a window never see it. It is added with a plain `or`, never `or on ()`:
  VictoriaMetrics fills the samples a comparison dropped with the right side of an
  `or on ()`, which would record 0 for every row a filter removed.
- A count whose empty answer means 0 records 0 while one of the metrics it reads has a series
  at the instant, as the JSON's 0 needs such a series within the catalog's lookback.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from exporter import __version__
from exporter.catalog import Catalog, ColumnSpec, FieldSpec, Kind, Unit
from exporter.durations import format_duration, parse_duration
from exporter.settings import TableLimits, default

GAUGE_PREFIX = "summary_"
RECORD_PREFIX = "summary:"
WINDOW_LABEL = "window"
SELECTOR_LABEL = "selector"
FINGERPRINT_LABEL = "fingerprint"
# The labels the rules set; a recorded answer's own labels are the others.
RULE_LABELS = frozenset({WINDOW_LABEL, SELECTOR_LABEL, FINGERPRINT_LABEL})
EXISTENCE_RECORD = RECORD_PREFIX + "metric_series"
METRIC_LABEL = "metric"
# How often Prometheus evaluates the group, unless `rules --interval` says otherwise: every
# exporter reading the rules pays nothing for them, Prometheus pays one evaluation of the
# catalog per interval (docs/benchmarks.md).
DEFAULT_INTERVAL = "30s"
_FINGERPRINT_LENGTH = 12
# Entities recorded per answer with a series per entity, as a multiple of those the exporter
# keeps: room for ties with the last one kept, which its order breaks by name.
TIE_ROOM = 2
# Units whose gauges use another (seconds, ratios), and how a recorded name says the JSON's.
_JSON_SUFFIXES = {Unit.MS: "_ms", Unit.PERCENT: "_percent"}


@dataclass(frozen=True)
class Bound:
    """An answer with a series per entity (a provider, a model), of which the exporter keeps
    only the first in its order: a table's rows and columns, a check's names."""

    label: str  # the entity's label
    descending: bool
    # A table's `limit` in the catalog (a number, top_models or none); None for a check's
    # names, which keep EXPORTER_MAX_ENTITIES.
    limit: int | str | None
    # Whether this is a table's (its rows, or with `rows` one of its columns), whose cut says
    # how many rows it has; a check's names are not counted.
    table: bool = True
    # For a table's column: the PromQL of the table's rows, whose first rows it is read for.
    rows: str | None = None

    def kept(self, limits: TableLimits) -> int:
        """How many entities the exporter keeps under `limits`."""
        return limits.max_entities if self.limit is None else limits.rows(self.limit)[0]


@dataclass(frozen=True)
class RecordedRule:
    """The rule recording the answer of one query the exporter asks."""

    record: str
    promql: str  # the query, as the exporter asks it
    expr: str
    fingerprint: str
    # What asks it first, for people: "http.total_requests", "checks.synthetic_series".
    used_by: str
    # For an answer with a series per entity: its first `ranked` entities in the exporter's
    # order, as `bound` says; None: the whole answer.
    bound: Bound | None = None
    ranked: int | None = None
    # For a table's row count: the PromQL of the table's rows it counts.
    counts: str | None = None


@dataclass(frozen=True)
class RuleSet:
    """Every rule of one window and selector: one per distinct query of the catalog."""

    window: str  # canonical
    selector: str  # canonical matchers, or ""
    rules: tuple[RecordedRule, ...]

    @property
    def by_promql(self) -> Mapping[str, RecordedRule]:
        return {rule.promql: rule for rule in self.rules}

    @property
    def by_fingerprint(self) -> Mapping[str, RecordedRule]:
        return {rule.fingerprint: rule for rule in self.rules}

    @property
    def group_name(self) -> str:
        name = f"summary-exporter-{self.window}"
        return f"{name}{{{self.selector}}}" if self.selector else name

    def labels(self, rule: RecordedRule) -> dict[str, str]:
        labels = {FINGERPRINT_LABEL: rule.fingerprint}
        if self.selector:
            labels[SELECTOR_LABEL] = self.selector
        return labels

    def group(self, interval: str | None = DEFAULT_INTERVAL) -> dict[str, Any]:
        """The rule group as data: one group, so that every answer has one evaluation time."""
        group: dict[str, Any] = {"name": self.group_name}
        if interval is not None:
            group["interval"] = format_duration(parse_duration(interval))
        group["rules"] = [
            {"record": rule.record, "expr": rule.expr, "labels": self.labels(rule)}
            for rule in self.rules
        ]
        return group

    def selector_of(self, rule: RecordedRule, extra: str = "") -> str:
        """The recorded series of one rule, as a PromQL selector (with `extra` matchers). The
        fingerprint says the selector too: a `selector` matcher would add nothing, and
        `selector=""` would make Prometheus walk every series for those without the label."""
        matchers = [f"{FINGERPRINT_LABEL}={json.dumps(rule.fingerprint)}"]
        return f"{rule.record}{{{','.join([*matchers, *([extra] if extra else [])])}}}"

    def samples_query(self, rules: Iterable[RecordedRule], max_age_ms: int) -> str:
        """One question for the answers of `rules`: each rule's samples, with their own
        timestamps, within the last `max_age_ms`, selected by fingerprint."""
        return f"{_series_of(rules)}[{format_duration(max_age_ms)}]"

    def stamped_query(self, rules: Iterable[RecordedRule]) -> str:
        """One question, asked at an evaluation's instant, for the samples of `rules` in the
        second up to it, of which the reader keeps those stamped with it: a plain selection,
        where comparing each series' timestamp in PromQL selects every series twice."""
        return f"{_series_of(rules)}[1s]"

    def exact_query(self, rules: Iterable[RecordedRule], instant: float) -> str:
        """One question, asked at `instant`, for the series of `rules` whose newest sample is
        the evaluation at `instant`. Unlike a range selection's samples, it leaves out series
        the evaluation marked stale, which VictoriaMetrics returns as NaN like a NaN answer."""
        series = _series_of(rules)
        return f"{series} and timestamp({series}) == {instant:.3f}"


def _series_of(rules: Iterable[RecordedRule]) -> str:
    fingerprints = "|".join(rule.fingerprint for rule in rules)
    matchers = [
        f'__name__=~"{RECORD_PREFIX}.+"',
        f"{FINGERPRINT_LABEL}=~{json.dumps(fingerprints)}",
    ]
    return f"{{{','.join(matchers)}}}"


def in_json_unit(name: str, unit: Unit | None) -> str:
    """`name` saying the JSON's unit where the gauges use another: `_ms`, `_percent`."""
    suffix = _JSON_SUFFIXES.get(unit) if unit is not None else None
    return name if suffix is None or name.endswith(suffix) else name + suffix


def _converts(unit: Unit | None) -> bool:
    return unit is not None and unit in _JSON_SUFFIXES


def field_record(domain: str, field: str, spec: FieldSpec) -> str:
    """A field's recorded series: its gauge's name with `summary:`, in the JSON's unit."""
    if _converts(spec.unit):
        return f"{RECORD_PREFIX}{domain}_{in_json_unit(field, spec.unit)}"
    return RECORD_PREFIX + spec.gauge_name(domain, field).removeprefix(GAUGE_PREFIX)


def _column_record(domain: str, table: str, name: str, spec: FieldSpec, column: ColumnSpec) -> str:
    if _converts(column.unit):
        return f"{RECORD_PREFIX}{domain}_{table}_{in_json_unit(name, column.unit)}"
    return RECORD_PREFIX + spec.column_gauge_name(domain, table, name).removeprefix(GAUGE_PREFIX)


@dataclass(frozen=True)
class _Use:
    """One use of a query: the name it would record under, and for a count whose empty
    answer means 0, the metrics whose series make that 0 true (None otherwise)."""

    record: str
    promql: str
    used_by: str
    zero_if: tuple[str, ...] | None = None
    bound: Bound | None = None
    counts: str | None = None


def _uses(catalog: Catalog, window: str) -> Iterator[_Use]:
    """Every query one evaluation asks, in the order Catalog.queries lists them."""
    for domain, name, spec in catalog.fields():
        key = f"{domain}.{name}"
        if spec.kind is Kind.TABLE:
            assert spec.label is not None  # the catalog guarantees a table's entity label
            rows = spec.render(window)
            first = Bound(spec.label, spec.order != "ascending", spec.limit)
            yield _Use(f"{RECORD_PREFIX}{domain}_{name}", rows, key, bound=first)
            count = f"count(count by ({spec.label}) ({_finite(rows)}))"
            yield _Use(f"{RECORD_PREFIX}{domain}_{name}:count", count, f"{key} rows", counts=rows)
            for column_name, column in spec.columns.items():
                record = _column_record(domain, name, column_name, spec, column)
                column_bound = replace(first, rows=rows)
                yield _Use(
                    record, column.render(window), f"{key}.{column_name}", bound=column_bound
                )
            continue
        record = field_record(domain, name, spec)
        yield _Use(record, spec.render(window), key, _zero_if(spec))
        bound = spec.render_lower_bound(window)
        if bound is not None:
            yield _Use(f"{record}_lower_bound", bound, f"{key} lower bound")
    for name, check in catalog.checks.items():
        key = f"checks.{name}"
        if check.query is not None:
            answer = check.answer_spec()
            record = f"{RECORD_PREFIX}check_{in_json_unit(name, answer.unit)}"
            yield _Use(record, answer.render(window), key, _zero_if(answer))
        if check.names is not None:
            named = Bound(check.names.label, descending=True, limit=None, table=False)
            record = f"{RECORD_PREFIX}check_{name}_names"
            yield _Use(record, check.names.render(window), key, bound=named)
    if names := catalog.sources():
        yield _Use(EXISTENCE_RECORD, catalog.existence_query(names), "metrics the catalog reads")


def _zero_if(spec: FieldSpec) -> tuple[str, ...] | None:
    """For a count whose empty answer means 0, the metrics that must exist for that 0."""
    counts = spec.no_series_means_zero and spec.kind in (Kind.INTEGER, Kind.NUMBER)
    return spec.sources() if counts else None


def default_limits() -> TableLimits:
    """The rows a table keeps with the shipped EXPORTER_MAX_ENTITIES and EXPORTER_TOP_MODELS."""
    return TableLimits(default("max_entities"), default("top_models"))


def rule_set(catalog: Catalog, window: str, limits: TableLimits | None = None) -> RuleSet:
    """The rules answering every query of `catalog` for `window`, under its selector, for an
    exporter keeping the rows of `limits` (by default the shipped ones)."""
    limits = default_limits() if limits is None else limits
    canonical = format_duration(parse_duration(window))
    first: dict[str, _Use] = {}
    zero_if: dict[str, tuple[str, ...] | None] = {}
    bound: dict[str, Bound | None] = {}
    for use in _uses(catalog, canonical):
        if use.promql not in first:
            first[use.promql], zero_if[use.promql] = use, use.zero_if
            bound[use.promql] = use.bound
            continue
        if zero_if[use.promql] != use.zero_if:
            # Recorded as 0 only where every use of the answer reads an empty one as that 0.
            zero_if[use.promql] = None
        bound[use.promql] = _shared(use.promql, bound[use.promql], use.bound)
    taken: set[str] = set()
    rules = []
    for promql, use in first.items():
        record = use.record
        for number in range(2, len(first) + 2):
            if record not in taken:
                break
            record = f"{use.record}_{number}"
        taken.add(record)
        answer, ranked, recorded = bound[promql], None, promql
        if answer is not None:
            ranked = TIE_ROOM * answer.kept(limits)
            recorded = _first(promql, answer, ranked)
        expr = _expression(catalog, recorded, canonical, zero_if[promql], use.record)
        digest = hashlib.sha256(f"{catalog.selector}\n{expr}".encode()).hexdigest()
        fingerprint = digest[:_FINGERPRINT_LENGTH]
        rules.append(
            RecordedRule(record, promql, expr, fingerprint, use.used_by, answer, ranked, use.counts)
        )
    return RuleSet(canonical, catalog.selector, tuple(rules))


def _finite(promql: str) -> str:
    # The exporter orders finite values only: NaN and ±Inf are never rows or names.
    return f"((({promql}) > -Inf) < +Inf)"


def _first(promql: str, bound: Bound, ranked: int) -> str:
    """The answer of `promql` for the first `ranked` entities in the exporter's order: its
    own (rows, names), or those of its table's rows (a column). Ties at the last of them are
    taken in the engine's order: the exporter reads such an answer only when it holds every
    row it keeps (exporter/recorded.py)."""
    pick = "topk" if bound.descending else "bottomk"
    if bound.rows is None:
        return f"{pick}({ranked}, {_finite(promql)})"
    return f"({promql}) and on ({bound.label}) {pick}({ranked}, {_finite(bound.rows)})"


def _shared(promql: str, one: Bound | None, other: Bound | None) -> Bound | None:
    """How to read an answer with two uses: by one bound where it covers both (a table's
    rows that are also one of its columns), else whole."""
    if one == other:
        return one
    for rows, column in ((one, other), (other, one)):
        if (
            rows is not None
            and column is not None
            and rows.rows is None
            and column == replace(rows, rows=promql)
        ):
            return rows
    return None


def _expression(
    catalog: Catalog, promql: str, window: str, zero_if: tuple[str, ...] | None, record: str
) -> str:
    answer = f"({promql})"
    if record == EXISTENCE_RECORD:
        # A recorded series takes the rule's name: the metric's name moves to a label first.
        answer = f'label_replace({answer}, "{METRIC_LABEL}", "$1", "__name__", "(.+)")'
    if zero_if == ():
        answer = f"{answer} or on () vector(0)"
    elif zero_if and parse_duration(catalog.lookback) >= _INSTANT_LOOKBACK_MS:
        # A series at the instant is a series within the lookback: the JSON's 0 as well.
        present = f"group({catalog.instant_query(zero_if)})"
        answer = f"{answer} or on () (vector(0) and on () {present})"
    # The answer's series carry the window; the marker that the rule ran does not.
    return f'label_replace({answer}, "{WINDOW_LABEL}", "{window}", "", "") or vector(0)'


# How far back an instant selector looks: Prometheus' default lookback delta.
_INSTANT_LOOKBACK_MS = 5 * 60_000


def render_rules(
    catalog: Catalog,
    window: str,
    source: str = "the built-in catalog",
    interval: str | None = DEFAULT_INTERVAL,
    *,
    prometheus_rule: bool = False,
    limits: TableLimits | None = None,
) -> str:
    """The rule file as YAML text, with a header naming what produced it; with
    `prometheus_rule`, the same group as a prometheus-operator PrometheusRule. Tables and
    check details are recorded for the rows of `limits` (by default the shipped ones)."""
    limits = default_limits() if limits is None else limits
    rules = rule_set(catalog, window, limits)
    command = f"summary-exporter rules --window {rules.window}"
    if rules.selector:
        command += f" --selector '{rules.selector}'"
    if interval != DEFAULT_INTERVAL:
        command += f" --interval {interval}"
    if prometheus_rule:
        command += " --prometheus-rule"
    header = (
        f"# Recording rules generated by summary-exporter {__version__} from {source}:\n"
        f"#   {command}\n"
        "# One rule per query the exporter asks; it reads them instead of the raw series while\n"
        "# they are fresh (EXPORTER_RECORDED_RULES). Values as in the JSON (milliseconds and\n"
        "# percent under names ending _ms and _percent), with a window label, beside one\n"
        "# series without one that says the rule ran. Regenerate instead of editing: the\n"
        "# fingerprint label tells the exporter whether a rule computes exactly its query.\n"
        f"# Tables and check details: their first {TIE_ROOM} x EXPORTER_MAX_ENTITIES="
        f"{limits.max_entities} rows\n# (EXPORTER_TOP_MODELS={limits.top_models} for the"
        " models), as the exporter keeps them with those\n# settings; regenerate with yours.\n"
    )
    document: dict[str, Any] = {"groups": [rules.group(interval)]}
    if prometheus_rule:
        header += (
            "# If your Prometheus selects rules by label (ruleSelector, e.g. release:\n"
            "# prometheus), add that label in your kustomization (`labels:`), not here.\n"
        )
        document = {
            "apiVersion": "monitoring.coreos.com/v1",
            "kind": "PrometheusRule",
            "metadata": {
                "name": f"summary-exporter-{rules.window}",
                "labels": {"app.kubernetes.io/name": "summary-exporter"},
            },
            "spec": document,
        }
    body = yaml.safe_dump(document, sort_keys=False, width=1_000_000, allow_unicode=True)
    return header + body
