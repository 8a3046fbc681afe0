"""Reading the catalog's answers from its recording rules (exporter/rules.py) when they are
there: a few bounded questions per refresh instead of every query over the raw series.

1. Every rule's samples, with their own timestamps, within the freshness limit
   (EXPORTER_RECORDED_MAX_AGE), but for the answers with a series per entity. The rules are
   one group, so one evaluation of it stamps every answer with the same instant; the newest
   evaluation that answered the most rules is read (one still being written is passed over
   for the one before it), and its instant becomes the snapshot's.
2. At that instant, in as few queries as fit VictoriaMetrics' length limit, the answers with
   a series per entity (a table's rows and columns, a check's names), bounded: the first
   rows in the exporter's order and those tied with the last of them (up to TIE_ROOM times
   the rows kept; beyond, PromQL answers that table), the columns of those rows, how many
   rows there are, and which of these rules answered at all. However many providers and
   models the gateway has, the exporter reads about as many series as it shows.

The queries without a fresh recorded answer are asked as PromQL at that instant
(EXPORTER_RECORDED_RULES=auto), or are errors (on), so that a snapshot keeps one instant.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from exporter.catalog import Catalog
from exporter.errors import RecordedRuleMissing, UpstreamError
from exporter.prometheus import QueryResult, RangeSeries, ReadBudget, Sample
from exporter.rules import (
    EXISTENCE_RECORD,
    FINGERPRINT_LABEL,
    METRIC_LABEL,
    RULE_LABELS,
    WINDOW_LABEL,
    RecordedRule,
    RuleSet,
    rule_set,
)
from exporter.settings import Settings, TableLimits

Mode = Literal["auto", "on", "off"]
# Labels of the second question's own series: which rules answered, how many rows a table has.
_READ_LABEL = "summary_read"
_ANSWERED = "answered"
_ROWS = "rows"
_OVERFLOW = "overflow"
# Entities read at most per bounded answer, as a multiple of those the exporter keeps: room
# for ties with the last one kept, which its order breaks by name.
TIE_ROOM = 2


class RecordedUpstream(Protocol):
    """An upstream that answers instant queries and returns a range selector's stored samples
    (PrometheusClient and FailoverClient do)."""

    display_url: str

    async def query(self, promql: str, at: float, budget: ReadBudget) -> QueryResult: ...

    async def query_samples(
        self, promql: str, at: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]: ...


@dataclass(frozen=True)
class RecordedRead:
    """What one read of the recorded series found for one refresh."""

    mode: Mode
    queries: tuple[str, ...]  # the questions asked, in order
    rules: RuleSet
    # The rules' evaluation instant read; None when no rule had answered within the limit.
    instant: float | None
    # The exporter's queries (PromQL) whose rules answered at `instant`.
    answered: frozenset[str]
    max_age: float
    upstream: str
    error: UpstreamError | None = None

    @property
    def missing(self) -> tuple[RecordedRule, ...]:
        """The rules without an answer at the instant read."""
        return tuple(rule for rule in self.rules.rules if rule.promql not in self.answered)

    def failure(self, rule: RecordedRule) -> UpstreamError:
        """Why a rule's query has no answer where PromQL may not stand in for it (mode on)."""
        if self.error is not None:
            return self.error
        if self.instant is None:
            detail = f"no recording rule answered within the last {self.max_age:g}s"
        else:
            detail = "no answer in the rules' newest evaluation"
        return RecordedRuleMissing(
            self.upstream,
            f"{rule.record}: {detail}; `summary-exporter rules` prints the rules to load"
            " (EXPORTER_RECORDED_RULES=on)",
        )


@dataclass(frozen=True)
class Found:
    """The recorded answers of one read, by the exporter's PromQL, each as its raw query would
    have answered at the read's instant (a bounded one only for its first entities), and how
    many rows each table's rows query has in all."""

    answers: dict[str, QueryResult]
    rows: dict[str, int]


class RecordedRules:
    """The recorded answers of a catalog's rules, for the default window of the background
    refresh; other windows and instants are asked as PromQL."""

    def __init__(
        self, client: RecordedUpstream, *, mode: Mode, max_age: float, limits: TableLimits
    ) -> None:
        self._client = client
        self.mode = mode
        self.max_age = max_age
        self._limits = limits
        self._rules: tuple[Catalog, str, RuleSet] | None = None
        # Whether the last read found a rule's answer: until one finds none, they are expected.
        self._found = True

    @property
    def awaited(self) -> bool:
        """Whether a refresh reads the rules before its PromQL, for their instant: with mode
        on, and in auto while the rules answer. In auto without rules, a refresh reads them
        alongside its PromQL instead (`look`), and costs no more time than without them."""
        return self.mode == "on" or self._found

    def rules(self, catalog: Catalog, window: str) -> RuleSet:
        """The rules of `catalog` (made once per catalog, which a reload replaces)."""
        if self._rules is None or self._rules[0] is not catalog or self._rules[1] != window:
            self._rules = (catalog, window, rule_set(catalog, window))
        return self._rules[2]

    async def read(
        self, catalog: Catalog, window: str, at: float, budget: ReadBudget
    ) -> tuple[RecordedRead, Found]:
        """What the rules answered in their newest evaluation within the limit before `at`;
        the answers count against the refresh's `budget`."""
        rules = self.rules(catalog, window)
        whole = [rule for rule in rules.rules if rule.bound is None]
        bounded = [rule for rule in rules.rules if rule.bound is not None]
        queries = [rules.samples_query(whole, max(1, round(self.max_age * 1000)))]
        found = Found({}, {})
        instant: float | None = None
        error: UpstreamError | None = None
        try:
            series = await self._client.query_samples(queries[0], at, budget)
        except UpstreamError as failed:
            error = failed
        else:
            instant, answers = newest_evaluation(rules, series, self._client.display_url)
            found.answers.update(answers)
            if instant is not None and bounded:
                asked = bounded_queries(rules, bounded, instant, self._limits)
                queries.extend(asked)
                at = instant
                try:
                    bounded_answers = await asyncio.gather(
                        *(self._client.query(query, at, budget) for query in asked)
                    )
                except UpstreamError as failed:
                    error = failed
                else:
                    _add_bounded(rules, bounded, bounded_answers, found)
        self._found = instant is not None
        read = RecordedRead(
            self.mode,
            tuple(queries),
            rules,
            instant,
            frozenset(found.answers),
            self.max_age,
            self._client.display_url,
            error,
        )
        return read, found

    async def look(
        self, catalog: Catalog, window: str, at: float, budget: ReadBudget
    ) -> RecordedRead:
        """Whether the rules answer now, read alongside PromQL that does not wait for their
        instant: the rules found are read from the next refresh on, and none answers this one."""
        read, _ = await self.read(catalog, window, at, budget)
        return replace(read, instant=None, answered=frozenset())


def recorded_rules(settings: Settings, client: RecordedUpstream) -> RecordedRules | None:
    """The reader of the recording rules, unless EXPORTER_RECORDED_RULES is off."""
    if settings.recorded_rules == "off":
        return None
    return RecordedRules(
        client,
        mode=settings.recorded_rules,
        max_age=settings.recorded_max_age,
        limits=settings.table_limits,
    )


def newest_evaluation(
    rules: RuleSet, series: Iterable[RangeSeries], upstream: str = ""
) -> tuple[float | None, dict[str, QueryResult]]:
    """The instant of the newest evaluation that answered the most rules, and its answers."""
    by_fingerprint = rules.by_fingerprint
    # Per evaluation (in whole milliseconds, as stored): the samples of each rule that answered.
    evaluations: dict[int, dict[str, list[Sample]]] = {}
    for one in series:
        rule = by_fingerprint.get(one.labels.get(FINGERPRINT_LABEL, ""))
        if rule is None:
            continue
        sample = _sample(rule, one.labels, 0.0)
        for at, value in one.points:
            answered = evaluations.setdefault(round(at * 1000), {}).setdefault(rule.promql, [])
            if sample is not None:
                answered.append(Sample(sample.labels, value))
    if not evaluations:
        return None, {}
    chosen = max(evaluations, key=lambda millis: (len(evaluations[millis]), millis))
    answers = {
        promql: QueryResult(tuple(samples), upstream=upstream)
        for promql, samples in evaluations[chosen].items()
    }
    return chosen / 1000, answers


def _sample(rule: RecordedRule, labels: Mapping[str, str], value: float) -> Sample | None:
    """A recorded series as a sample of the raw answer: without the record's name and the
    rule's labels, the existence answer's metric name back in `__name__`; None for the series
    that says the rule ran, which has no window label."""
    if WINDOW_LABEL not in labels:
        return None
    kept = {k: v for k, v in labels.items() if k != "__name__" and k not in RULE_LABELS}
    if rule.record == EXISTENCE_RECORD:
        kept = {"__name__": kept.get(METRIC_LABEL, "")}
    return Sample(kept, value)


def bounded_queries(
    rules: RuleSet, bounded: Sequence[RecordedRule], instant: float, limits: TableLimits
) -> list[str]:
    """Instant queries, at `instant`, for the answers with a series per entity: of each, the
    samples stamped `instant` among its first entities (ties included), whether it answered,
    and for a table's rows how many entities there are. As few queries as fit under
    MAX_QUERY_LENGTH each: VictoriaMetrics refuses longer ones."""
    queries: list[str] = []
    for rule in bounded:
        part = _bounded_part(rules, rule, instant, limits)
        if queries and len(queries[-1]) + len(_OR) + len(part) <= MAX_QUERY_LENGTH:
            queries[-1] += _OR + part
        else:
            queries.append(part)
    return queries


# VictoriaMetrics' default -search.maxQueryLen is 16 KiB; room left for its own accounting.
MAX_QUERY_LENGTH = 12_000
_OR = " or "


def _bounded_part(rules: RuleSet, rule: RecordedRule, instant: float, limits: TableLimits) -> str:
    bound = rule.bound
    assert bound is not None  # only bounded rules are read here
    ran = _stamped(rules, rule, instant, answer=False)
    parts = [_labelled(f"count by ({FINGERPRINT_LABEL}) ({ran})", _ANSWERED)]
    if bound.rows is not None:
        rows = _first(rules, rules.by_promql[bound.rows], instant, limits)
        parts.append(f"({_stamped(rules, rule, instant)} and on ({bound.label}) {rows})")
        return _OR.join(parts)
    parts.append(_first(rules, rule, instant, limits))
    # More entities tied than read: which ones the exporter keeps depends on names it has not
    # seen, so PromQL answers instead.
    tied = f"count by ({FINGERPRINT_LABEL}) ({_tied(rules, rule, instant, limits)})"
    parts.append(_labelled(f"{tied} > {TIE_ROOM * _kept(rule, limits)}", _OVERFLOW))
    if bound.table:
        finite = _finite(_stamped(rules, rule, instant))
        per_entity = f"count by ({FINGERPRINT_LABEL}, {bound.label}) ({finite})"
        parts.append(_labelled(f"count by ({FINGERPRINT_LABEL}) ({per_entity})", _ROWS))
    return _OR.join(parts)


def _stamped(rules: RuleSet, rule: RecordedRule, instant: float, *, answer: bool = True) -> str:
    """The rule's series whose newest sample is the evaluation at `instant`: the answer's, or
    with `answer` False also the one that says the rule ran."""
    selector = rules.selector_of(rule, f'{WINDOW_LABEL}!=""' if answer else "")
    return f"({selector} and timestamp({selector}) == {instant:.3f})"


def _finite(expression: str) -> str:
    # The exporter orders finite values only: NaN and ±Inf are never rows or names.
    return f"(({expression} > -Inf) < +Inf)"


def _kept(rule: RecordedRule, limits: TableLimits) -> int:
    bound = rule.bound
    assert bound is not None
    return limits.max_entities if bound.limit is None else limits.rows(bound.limit)[0]


def _tied(rules: RuleSet, rule: RecordedRule, instant: float, limits: TableLimits) -> str:
    """The rule's first entities in the exporter's order at `instant`, and all tied with the
    last of them: a superset of those it keeps, whatever the names that break the ties."""
    bound = rule.bound
    assert bound is not None
    keep = _kept(rule, limits)
    finite = _finite(_stamped(rules, rule, instant))
    if bound.descending:
        return f"({finite} >= scalar(min(topk({keep}, {finite}))))"
    return f"({finite} <= scalar(max(bottomk({keep}, {finite}))))"


def _first(rules: RuleSet, rule: RecordedRule, instant: float, limits: TableLimits) -> str:
    """`_tied`, at most TIE_ROOM times the entities kept: an answer bounded however many
    entities tie (an overflow is told apart by its own part)."""
    bound = rule.bound
    assert bound is not None
    pick = "topk" if bound.descending else "bottomk"
    room = TIE_ROOM * _kept(rule, limits)
    return f"{pick}({room}, {_tied(rules, rule, instant, limits)})"


def _labelled(expression: str, part: str) -> str:
    return f'label_replace({expression}, "{_READ_LABEL}", "{part}", "", "")'


def _add_bounded(
    rules: RuleSet, bounded: Sequence[RecordedRule], answers: Sequence[QueryResult], found: Found
) -> None:
    """The bounded rules that answered, with their samples, from the bounded questions."""
    by_fingerprint = rules.by_fingerprint
    answered: set[str] = set()
    overflowed: set[str] = set()
    samples: dict[str, list[Sample]] = {}
    for one in (sample for answer in answers for sample in answer.samples):
        rule = by_fingerprint.get(one.labels.get(FINGERPRINT_LABEL, ""))
        if rule is None:
            continue
        part = one.labels.get(_READ_LABEL)
        if part == _ANSWERED:
            answered.add(rule.promql)
        elif part == _ROWS:
            found.rows[rule.promql] = int(one.value)
        elif part == _OVERFLOW:
            overflowed.add(rule.promql)
        elif (sample := _sample(rule, one.labels, one.value)) is not None:
            samples.setdefault(rule.promql, []).append(sample)
    answered -= overflowed
    for rule in bounded:
        rows = rule.bound.rows if rule.bound is not None else None
        # A column is read for its table's first rows: without them, it says nothing.
        if rule.promql in answered and (rows is None or rows in answered):
            found.answers[rule.promql] = QueryResult(
                tuple(samples.get(rule.promql, ())), upstream=answers[0].upstream
            )
