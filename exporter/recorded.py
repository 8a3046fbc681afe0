"""Reading the catalog's answers from its recording rules (exporter/rules.py) when they are
there: a few bounded questions per refresh instead of every query over the raw series.

1. Every rule's samples, with their own timestamps, within the freshness limit
   (EXPORTER_RECORDED_MAX_AGE), but for the answers with a series per entity. The rules are
   one group, so one evaluation of it stamps every answer with the same instant; the newest
   evaluation that answered the most rules is read (one still being written is passed over
   for the one before it), and its instant becomes the snapshot's.
2. At that instant, the answers with a series per entity (a table's rows and columns, a
   check's names): plain selectors of their recorded series stamped with it, a few hundred
   series per question. The rules recorded them for their first entities only, so however
   many providers and models the gateway has, the exporter reads about as many series as it
   shows. Such an answer is read where it holds every row the exporter keeps: with more
   entities tied at the last row kept than the rule recorded, which ones the exporter keeps
   depends on names it has not seen, and PromQL answers that table.

The queries without a fresh recorded answer are asked as PromQL at that instant
(EXPORTER_RECORDED_RULES=auto), or are errors (on), so that a snapshot keeps one instant.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, Protocol

from exporter.catalog import Catalog
from exporter.errors import RecordedRuleMissing, UpstreamError
from exporter.prometheus import QueryResult, RangeSeries, ReadBudget, Sample
from exporter.ranking import rank
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
    # The queries whose rules answered without every row the exporter keeps (more entities
    # tied at the last one than recorded): PromQL answers them, whatever the mode.
    cut_short: frozenset[str] = frozenset()

    @property
    def missing(self) -> tuple[RecordedRule, ...]:
        """The rules without an answer at the instant read."""
        read = self.answered | self.cut_short
        return tuple(rule for rule in self.rules.rules if rule.promql not in read)

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
            self._rules = (catalog, window, rule_set(catalog, window, self._limits))
        return self._rules[2]

    async def read(
        self, catalog: Catalog, window: str, at: float, budget: ReadBudget
    ) -> tuple[RecordedRead, Found]:
        """What the rules answered in their newest evaluation within the limit before `at`;
        the answers count against the refresh's `budget`."""
        rules = self.rules(catalog, window)
        whole = [rule for rule in rules.rules if rule.bound is None]
        queries = [rules.samples_query(whole, max(1, round(self.max_age * 1000)))]
        found = Found({}, {})
        instant: float | None = None
        error: UpstreamError | None = None
        answered: set[str] = set()
        cut_short: set[str] = set()
        try:
            series = await self._client.query_samples(queries[0], at, budget)
        except UpstreamError as failed:
            error = failed
        else:
            instant, answers = newest_evaluation(rules, series, self._client.display_url)
            if instant is not None:
                error = await self._at_instant(rules, instant, budget, answers, queries)
            answered, cut_short = _first_rows(rules, answers, found, self._limits)
        self._found = instant is not None
        read = RecordedRead(
            self.mode,
            tuple(queries),
            rules,
            instant,
            frozenset(answered),
            self.max_age,
            self._client.display_url,
            error,
            frozenset(cut_short),
        )
        return read, found

    async def _at_instant(
        self,
        rules: RuleSet,
        instant: float,
        budget: ReadBudget,
        answers: dict[str, QueryResult],
        queries: list[str],
    ) -> UpstreamError | None:
        """Adds to `answers` those recorded for their first entities, stamped `instant`, then
        asks again in the exact form every rule with a NaN there: in a range selection,
        VictoriaMetrics returns a stale marker as NaN, which JSON cannot tell from a NaN answer."""
        upstream = self._client.display_url
        ranked = [rule for rule in rules.rules if rule.ranked is not None]
        asked = [rules.stamped_query(part) for part in _parts(ranked)]
        queries.extend(asked)
        try:
            stamped = await asyncio.gather(
                *(self._client.query_samples(query, instant, budget) for query in asked)
            )
            answers.update(_stamped_answers(rules, stamped, instant, upstream))
            unsure = [
                rules.by_promql[promql]
                for promql, answer in answers.items()
                if any(math.isnan(sample.value) for sample in answer.samples)
            ]
            # A rotation of a table's entities marks rows stale in each of its columns: the
            # exact questions are bounded like the stamped ones.
            asked = [rules.exact_query(part, instant) for part in _parts(unsure)]
            queries.extend(asked)
            exact = await asyncio.gather(
                *(self._client.query(query, instant, budget) for query in asked)
            )
        except UpstreamError as failed:
            return failed
        for rule in unsure:
            del answers[rule.promql]
        samples = (sample for result in exact for sample in result.samples)
        answers.update(_answers(rules, _labelled(samples), upstream))
        return None

    async def look(
        self, catalog: Catalog, window: str, at: float, budget: ReadBudget
    ) -> RecordedRead:
        """Whether the rules answer now, read alongside PromQL that does not wait for their
        instant: the rules found are read from the next refresh on, and none answers this one."""
        read, _ = await self.read(catalog, window, at, budget)
        return replace(read, instant=None, answered=frozenset(), cut_short=frozenset())


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


# Series per question for the answers recorded for their first entities. At about 200 bytes a
# series, 800 make an answer of some 160 KB, within EXPORTER_MAX_RESPONSE_BYTES, and the whole
# tables of the shipped catalog three questions at once: each more question that Prometheus
# runs beside the others lengthens every one of them.
SERIES_PER_QUESTION = 800


def _parts(rules: Iterable[RecordedRule]) -> list[list[RecordedRule]]:
    """`rules` in groups of at most SERIES_PER_QUESTION series: a rule's first entities and
    the series that says it ran, or its whole answer, one series."""
    parts: list[list[RecordedRule]] = []
    size = SERIES_PER_QUESTION
    for rule in rules:
        series = 1 if rule.ranked is None else rule.ranked + 1
        if size + series > SERIES_PER_QUESTION:
            parts.append([])
            size = 0
        parts[-1].append(rule)
        size += series
    return parts


def _stamped_answers(
    rules: RuleSet, results: Iterable[Iterable[RangeSeries]], instant: float, upstream: str
) -> dict[str, QueryResult]:
    """The answers of the rules whose series have a sample stamped `instant` (in whole
    milliseconds, as stored) in the stamped questions' answers."""
    stamp = round(instant * 1000)
    stamped = (
        (one.labels, value)
        for result in results
        for one in result
        for at, value in one.points
        if round(at * 1000) == stamp
    )
    return _answers(rules, stamped, upstream)


def _labelled(samples: Iterable[Sample]) -> Iterable[tuple[Mapping[str, str], float]]:
    return ((sample.labels, sample.value) for sample in samples)


def _answers(
    rules: RuleSet, series: Iterable[tuple[Mapping[str, str], float]], upstream: str
) -> dict[str, QueryResult]:
    """Recorded series (labels, value) as the raw answers of their rules."""
    by_fingerprint = rules.by_fingerprint
    samples: dict[str, list[Sample]] = {}
    for labels, value in series:
        rule = by_fingerprint.get(labels.get(FINGERPRINT_LABEL, ""))
        if rule is None:
            continue
        answer = samples.setdefault(rule.promql, [])
        if (sample := _sample(rule, labels, value)) is not None:
            answer.append(sample)
    return {
        promql: QueryResult(tuple(answer), upstream=upstream) for promql, answer in samples.items()
    }


def _first_rows(
    rules: RuleSet, answers: Mapping[str, QueryResult], found: Found, limits: TableLimits
) -> tuple[set[str], set[str]]:
    """Adds to `found` the recorded answers that stand for their raw PromQL, and each table's
    row count. Returns the queries read from the rules, and those cut short: recorded for
    their first entities without every one the exporter keeps (a table's columns with its
    rows). A table's rows without their count, or columns without their rows, are not read."""
    answered = set(answers)
    cut_short: set[str] = set()
    counts = {rule.promql for rule in rules.rules if rule.counts is not None}
    for rule in rules.rules:
        if rule.counts is not None and rule.promql in answers:
            samples = answers[rule.promql].samples
            found.rows[rule.counts] = int(samples[0].value) if samples else 0
    for rule in rules.rules:
        bound = rule.bound
        if bound is None or bound.rows is not None or rule.promql not in answers:
            continue
        if not _holds_kept(answers[rule.promql], rule, limits):
            cut_short.add(rule.promql)
        elif bound.table and rule.promql not in found.rows:
            # Without its count, a table cannot say how many rows it cut.
            answered.discard(rule.promql)
    for rule in rules.rules:
        rows = None if rule.bound is None else rule.bound.rows
        if rows is None or rule.promql not in answered:
            continue
        if rows in cut_short:
            cut_short.add(rule.promql)
        elif rows not in answered:
            answered.discard(rule.promql)
    answered -= cut_short
    found.answers.update({promql: answers[promql] for promql in answered - counts})
    return answered, cut_short


def _holds_kept(answer: QueryResult, rule: RecordedRule, limits: TableLimits) -> bool:
    """Whether an answer recorded for its first `rule.ranked` series holds every entity the
    exporter keeps: all of the answer's series were recorded, or the last one recorded comes
    after the last entity kept (none tied with it was left out)."""
    bound, ranked = rule.bound, rule.ranked
    # Only answers recorded for their first entities are checked.
    assert bound is not None
    assert ranked is not None
    if len(answer.samples) < ranked:
        return True
    order = rank(answer.samples, bound.label, bound.descending)
    best = dict(reversed(order))  # each entity's first value in the order
    keep = bound.kept(limits)
    if len(best) <= keep:
        return False
    last_kept = best[list(dict.fromkeys(name for name, _ in order))[keep - 1]]
    values = [sample.value for sample in answer.samples]
    return (min(values) if bound.descending else max(values)) != last_kept
