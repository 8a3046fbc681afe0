"""Reading the recording rules: which evaluation is read, how a recorded series becomes the raw
answer, PromQL for what they lack (auto) or an error (on), and what says which answered."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from exporter.catalog import Catalog
from exporter.collector import SummaryCollector
from exporter.durations import parse_duration
from exporter.environment import Environment
from exporter.errors import RecordedRuleMissing
from exporter.health import Status, assess
from exporter.prometheus import QueryResult, RangeSeries, ReadBudget, Sample
from exporter.recorded import SERIES_PER_QUESTION, Mode, RecordedRules, newest_evaluation
from exporter.refresher import Evaluator, Refresher
from exporter.rules import RecordedRule, RuleSet, rule_set
from exporter.snapshot import Snapshot, evaluate, explain
from tests.conftest import LIMITS

WINDOW = "5m"
NOW = 1_767_227_400.0
RULES_AT = NOW - 12.5  # the rules' newest evaluation
MAX_BYTES = 1 << 20


@dataclass
class RecordingUpstream:
    """Answers the samples question from `recorded` and every instant query from `answers`
    (empty by default), and notes what it was asked."""

    recorded: list[RangeSeries] = field(default_factory=list)
    answers: dict[str, QueryResult] = field(default_factory=dict)
    asked: list[tuple[str, float]] = field(default_factory=list)
    display_url: str = "http://prometheus:9090"

    async def query(self, promql: str, at: float, budget: ReadBudget) -> QueryResult:
        self.asked.append((promql, at))
        if promql.startswith("{__name__"):  # the exact question: a NaN here is a stale marker
            stamped = tuple(
                Sample(one.labels, value)
                for one in self._selected(promql)
                for when, value in one.points
                if when == at and not math.isnan(value)
            )
            return QueryResult(stamped, upstream=self.display_url)
        return self.answers.get(promql, QueryResult((), upstream=self.display_url))

    async def query_samples(
        self, promql: str, at: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]:
        """The selected series' samples within the question's range up to `at`."""
        self.asked.append((promql, at))
        matched = re.search(r"\[(\w+)\]$", promql)
        assert matched is not None, promql
        seconds = parse_duration(matched[1]) / 1000
        return tuple(
            RangeSeries(one.labels, tuple(p for p in one.points if at - seconds <= p[0] <= at))
            for one in self._selected(promql)
        )

    def _selected(self, promql: str) -> tuple[RangeSeries, ...]:
        fingerprints = set(self.fingerprints(promql))
        return tuple(one for one in self.recorded if one.labels["fingerprint"] in fingerprints)

    @staticmethod
    def fingerprints(promql: str) -> list[str]:
        """The fingerprints a question about recorded series selects."""
        matched = re.search(r'fingerprint=~"([^"]*)"', promql)
        assert matched is not None, promql
        return matched.group(1).split("|")


def rules(catalog: Catalog) -> RuleSet:
    return rule_set(catalog, WINDOW)


def rule_of(catalog: Catalog, record: str) -> RecordedRule:
    [rule] = [rule for rule in rules(catalog).rules if rule.record == record]
    return rule


def series(
    rule: RecordedRule,
    points: Sequence[tuple[float, float]],
    labels: Mapping[str, str] | None = None,
    *,
    empty: bool = False,
) -> RangeSeries:
    """A rule's recorded series; `empty` is the marker of an empty answer (no window label)."""
    named = {"__name__": rule.record, "fingerprint": rule.fingerprint, **(labels or {})}
    return RangeSeries(named if empty else {**named, "window": WINDOW}, tuple(points))


def every_scalar_rule(catalog: Catalog, at: float, value: float = 7.0) -> list[RangeSeries]:
    """Every rule answering with one series (not a table's row count), at `at`."""
    return [
        series(rule, [(at, value)])
        for rule in rules(catalog).rules
        if rule.bound is None and rule.counts is None
    ]


async def evaluated(
    catalog: Catalog, upstream: RecordingUpstream, mode: Mode | RecordedRules
) -> Snapshot:
    """One evaluation reading the rules, by a new reader in `mode` or by the reader given."""
    reader = (
        mode
        if isinstance(mode, RecordedRules)
        else RecordedRules(upstream, mode=mode, max_age=60.0, limits=LIMITS)
    )
    return await evaluate(
        catalog,
        upstream,
        at=NOW,
        window=WINDOW,
        max_concurrency=4,
        limits=LIMITS,
        max_bytes=MAX_BYTES,
        recorded=reader,
    )


def test_the_newest_evaluation_that_answered_the_most_rules_is_read(catalog: Catalog) -> None:
    total = rule_of(catalog, "summary:http_total_requests")
    rate = rule_of(catalog, "summary:http_request_rate_per_minute")
    recorded = [
        # At RULES_AT + 30 only one rule had been written yet: an evaluation in progress.
        series(total, [(RULES_AT - 30, 1.0), (RULES_AT, 2.0), (RULES_AT + 30, 3.0)]),
        series(rate, [(RULES_AT - 30, 10.0), (RULES_AT, 20.0)]),
    ]
    instant, answers = newest_evaluation(rules(catalog), recorded)
    assert instant == RULES_AT
    assert answers[total.promql].samples == (Sample({}, 2.0),)
    assert answers[rate.promql].samples == (Sample({}, 20.0),)


def test_a_recorded_series_reads_as_the_raw_answer(catalog: Catalog) -> None:
    top = rule_of(catalog, "summary:models_requests")
    in_progress = rule_of(catalog, "summary:http_in_progress")
    existence = rule_of(catalog, "summary:metric_series")
    foreign = RangeSeries({"__name__": "summary:http_total_requests", "fingerprint": "other"}, ())
    recorded = [
        series(top, [(RULES_AT, 5.0)], {"model": "gpt-4o"}),
        series(in_progress, [(RULES_AT, 0.0)], empty=True),
        series(existence, [(RULES_AT, 3.0)], {"metric": "fastapi_requests_total"}),
        foreign,
    ]
    _, answers = newest_evaluation(rules(catalog), recorded)
    # The rule's own labels go; the entity's stay.
    assert answers[top.promql].samples == (Sample({"model": "gpt-4o"}, 5.0),)
    # The marker of an empty answer is an empty answer: "ran and found nothing".
    assert answers[in_progress.promql].samples == ()
    # The existence answer's metric name goes back to __name__, as the raw answer has it.
    [sample] = answers[existence.promql].samples
    assert sample == Sample({"__name__": "fastapi_requests_total"}, 3.0)
    # A series of another catalog's rule (another fingerprint) is never read.
    assert len(answers) == 3


async def test_fields_come_from_the_rules_at_their_instant_and_the_rest_from_promql(
    catalog: Catalog,
) -> None:
    upstream = RecordingUpstream(every_scalar_rule(catalog, RULES_AT))
    snapshot = await evaluated(catalog, upstream, "auto")
    assert snapshot.instant == RULES_AT
    total = snapshot.fields[("http", "total_requests")]
    assert (total.value, total.recorded) == (7, True)
    # The tables' and check names' rules did not answer: PromQL did.
    by_model = snapshot.fields[("models", "by_model")]
    assert not by_model.recorded
    asked_raw = [(promql, at) for promql, at in upstream.asked[1:]]
    assert {at for _, at in asked_raw} == {RULES_AT}
    assert rule_of(catalog, "summary:models_by_model").promql in {q for q, _ in asked_raw}
    assert rule_of(catalog, "summary:http_total_requests").promql not in {q for q, _ in asked_raw}


async def test_a_missing_or_stale_rule_falls_back_to_its_promql_alone(catalog: Catalog) -> None:
    total = rule_of(catalog, "summary:http_total_requests")
    recorded = [
        s for s in every_scalar_rule(catalog, RULES_AT) if s.labels["__name__"] != total.record
    ]
    upstream = RecordingUpstream(recorded)
    upstream.answers[total.promql] = QueryResult((Sample({}, 42.0),), upstream="raw")
    snapshot = await evaluated(catalog, upstream, "auto")
    field = snapshot.fields[("http", "total_requests")]
    assert (field.value, field.recorded) == (42, False)
    assert (total.promql, RULES_AT) in upstream.asked
    assert snapshot.fields[("http", "request_rate_per_minute")].recorded
    explained = explain(catalog, snapshot)
    assert explained["http.total_requests"]["answered_by"] == "promql"
    rate = explained["http.request_rate_per_minute"]
    assert rate["answered_by"] == "recorded_rule"
    rate_rule = rule_of(catalog, "summary:http_request_rate_per_minute")
    assert rate["asked"] == (
        f'summary:http_request_rate_per_minute{{fingerprint="{rate_rule.fingerprint}"}}'
    )
    assert rate["read_promql"][0] == upstream.asked[0][0]


def models_table(catalog: Catalog, values: Sequence[float], total: int) -> list[RangeSeries]:
    """The recorded models table at RULES_AT: rows model-0, model-1... with `values` (the
    rule's first rows), a cell of each column for each, and `total` rows in all."""
    table = catalog.domains["models"].fields["by_model"]
    rows = rules(catalog).by_promql[table.render(WINDOW)]
    recorded = [series(rows, [(RULES_AT, 0.0)], empty=True)]
    for index, value in enumerate(values):
        recorded.append(series(rows, [(RULES_AT, value)], {"model": f"model-{index}"}))
        for column in table.columns.values():
            rule = rules(catalog).by_promql[column.render(WINDOW)]
            recorded.append(series(rule, [(RULES_AT, 1.0)], {"model": f"model-{index}"}))
    count = rule_of(catalog, "summary:models_by_model:count")
    return [*recorded, series(count, [(RULES_AT, float(total))])]


def by_model_asked(catalog: Catalog, upstream: RecordingUpstream) -> set[str]:
    table = catalog.domains["models"].fields["by_model"]
    promqls = {table.render(WINDOW), *(c.render(WINDOW) for c in table.columns.values())}
    return {promql for promql, _ in upstream.asked} & promqls


async def test_a_table_is_read_from_its_first_rows_with_the_rows_it_has_in_all(
    catalog: Catalog,
) -> None:
    # 20 rows recorded (twice the 10 kept), 500 in all: the 10th is ahead of the 20th.
    values = [100.0 - index for index in range(2 * LIMITS.top_models)]
    upstream = RecordingUpstream(
        [*every_scalar_rule(catalog, RULES_AT), *models_table(catalog, values, 500)]
    )
    snapshot = await evaluated(catalog, upstream, "auto")
    table = snapshot.fields[("models", "by_model")]
    assert table.recorded
    assert [row["model"] for row in table.value] == [  # type: ignore[index,union-attr]
        f"model-{index}" for index in range(LIMITS.top_models)
    ]
    assert table.cut is not None
    assert (table.cut.rows, table.cut.of) == (LIMITS.top_models, 500)
    assert by_model_asked(catalog, upstream) == set()


async def test_a_table_with_ties_at_its_cut_beyond_its_recorded_rows_is_asked_as_promql(
    catalog: Catalog,
) -> None:
    # The 10th row kept ties with the 20th, the last recorded: more may tie unrecorded.
    values = [100.0 - min(index, 9) for index in range(2 * LIMITS.top_models)]
    upstream = RecordingUpstream(
        [*every_scalar_rule(catalog, RULES_AT), *models_table(catalog, values, 500)]
    )
    modes: tuple[Mode, ...] = ("auto", "on")
    for mode in modes:
        snapshot = await evaluated(catalog, upstream, mode)
        table = snapshot.fields[("models", "by_model")]
        assert not table.recorded
        assert table.error is None  # asked as PromQL, not a missing rule
        assert snapshot.recorded is not None
        missing = {rule.record for rule in snapshot.recorded.missing}
        assert not {record for record in missing if record.startswith("summary:models_by")}
        table_promql = catalog.domains["models"].fields["by_model"].render(WINDOW)
        assert (table_promql, RULES_AT) in upstream.asked
    assert len(by_model_asked(catalog, upstream)) == 1 + len(
        catalog.domains["models"].fields["by_model"].columns
    )


async def test_ties_within_the_recorded_rows_or_a_table_recorded_whole_are_read(
    catalog: Catalog,
) -> None:
    # model-9 to model-18 tie at the 10th row, model-19 after them: all ties recorded.
    tied_at_cut = [100.0 - min(index, 9) for index in range(2 * LIMITS.top_models - 1)] + [50.0]
    whole = [7.0] * (2 * LIMITS.top_models - 1)  # fewer rows than recorded: all of them
    # Ties broken by name, as for the raw answer.
    cases = ((tied_at_cut, 500, ["model-8", "model-10"]), (whole, 19, ["model-16", "model-17"]))
    for values, total, last_two in cases:
        upstream = RecordingUpstream(
            [*every_scalar_rule(catalog, RULES_AT), *models_table(catalog, values, total)]
        )
        snapshot = await evaluated(catalog, upstream, "auto")
        table = snapshot.fields[("models", "by_model")]
        assert table.recorded
        assert isinstance(table.value, list)
        assert [row["model"] for row in table.value][-2:] == last_two  # type: ignore[index]
        assert by_model_asked(catalog, upstream) == set()


async def test_first_rows_are_read_at_the_rules_instant_a_few_hundred_series_a_question(
    catalog: Catalog,
) -> None:
    upstream = RecordingUpstream(every_scalar_rule(catalog, RULES_AT))
    await evaluated(catalog, upstream, "auto")
    stamped = [(promql, at) for promql, at in upstream.asked[1:] if promql.startswith("{")]
    assert {at for _, at in stamped} == {RULES_AT}
    ranked = {rule.fingerprint: rule.ranked for rule in rules(catalog).rules if rule.ranked}
    parts = [upstream.fingerprints(promql) for promql, _ in stamped]
    assert sorted(fp for part in parts for fp in part) == sorted(ranked)
    assert len(parts) > 1
    assert all(sum(ranked[fp] + 1 for fp in part) <= SERIES_PER_QUESTION for part in parts)


async def test_a_row_marked_stale_at_the_rules_instant_is_left_out_by_an_exact_question(
    catalog: Catalog,
) -> None:
    values = [100.0 - index for index in range(2 * LIMITS.top_models)]
    table = catalog.domains["models"].fields["by_model"]
    rows = rules(catalog).by_promql[table.render(WINDOW)]
    # VictoriaMetrics returns the stale marker of a model that left the top as a NaN sample.
    left = series(rows, [(RULES_AT, math.nan)], {"model": "model-left"})
    upstream = RecordingUpstream(
        [*every_scalar_rule(catalog, RULES_AT), *models_table(catalog, values, 500), left]
    )
    snapshot = await evaluated(catalog, upstream, "auto")
    by_model = snapshot.fields[("models", "by_model")]
    assert by_model.recorded
    assert [row["model"] for row in by_model.value] == [  # type: ignore[index,union-attr]
        f"model-{index}" for index in range(LIMITS.top_models)
    ]
    exact = [promql for promql, _ in upstream.asked if "timestamp(" in promql]
    assert [upstream.fingerprints(promql) for promql in exact] == [[rows.fingerprint]]
    assert by_model_asked(catalog, upstream) == set()


async def test_rows_marked_stale_in_every_table_are_asked_again_a_few_hundred_series_a_question(
    catalog: Catalog,
) -> None:
    ranked = {rule.fingerprint: rule.ranked for rule in rules(catalog).rules if rule.ranked}
    # Every table's entities rotated: each ranked rule holds the stale marker of one that left.
    stale = [
        series(rule, [(RULES_AT, math.nan)], {"entity": "left"})
        for rule in rules(catalog).rules
        if rule.ranked
    ]
    upstream = RecordingUpstream([*every_scalar_rule(catalog, RULES_AT), *stale])
    await evaluated(catalog, upstream, "auto")
    exact = [
        upstream.fingerprints(promql) for promql, _ in upstream.asked if "timestamp(" in promql
    ]
    assert sorted(fp for part in exact for fp in part) == sorted(ranked)
    assert len(exact) > 1
    assert all(sum(ranked[fp] + 1 for fp in part) <= SERIES_PER_QUESTION for part in exact)


async def test_a_whole_answer_marked_stale_at_the_rules_instant_is_asked_as_promql(
    catalog: Catalog,
) -> None:
    total = rule_of(catalog, "summary:http_total_requests")
    # The rule's answer went empty at RULES_AT: VictoriaMetrics returns its stale marker.
    recorded = [
        one
        if one.labels["fingerprint"] != total.fingerprint
        else series(total, [(RULES_AT, math.nan)])
        for one in every_scalar_rule(catalog, RULES_AT)
    ]
    upstream = RecordingUpstream(recorded)
    snapshot = await evaluated(catalog, upstream, "auto")
    assert not snapshot.fields[("http", "total_requests")].recorded
    assert snapshot.fields[("http", "request_rate_per_minute")].recorded
    exact = [promql for promql, _ in upstream.asked if "timestamp(" in promql]
    assert [upstream.fingerprints(promql) for promql in exact] == [[total.fingerprint]]
    assert (total.promql, RULES_AT) in upstream.asked


async def test_a_table_without_its_row_count_is_asked_as_promql(catalog: Catalog) -> None:
    values = [100.0 - index for index in range(2 * LIMITS.top_models)]
    recorded = models_table(catalog, values, 500)[:-1]
    upstream = RecordingUpstream([*every_scalar_rule(catalog, RULES_AT), *recorded])
    snapshot = await evaluated(catalog, upstream, "auto")
    assert not snapshot.fields[("models", "by_model")].recorded
    assert len(by_model_asked(catalog, upstream)) == 1 + len(
        catalog.domains["models"].fields["by_model"].columns
    )


async def test_with_no_fresh_rule_every_field_is_asked_as_promql_at_the_refresh_instant(
    catalog: Catalog,
) -> None:
    upstream = RecordingUpstream()
    snapshot = await evaluated(catalog, upstream, "auto")
    assert snapshot.instant == NOW
    assert not any(f.recorded for f in snapshot.fields.values())
    assert len(upstream.asked) == 1 + len(catalog.queries(WINDOW))
    assert snapshot.document(NOW)["recorded_rules"] == {
        "mode": "auto",
        "timestamp": None,
        "fields": 0,
        "of": len(catalog.fields()),
        "error": None,
    }


async def test_in_auto_without_rules_promql_does_not_wait_for_them_until_they_answer(
    catalog: Catalog,
) -> None:
    upstream = RecordingUpstream()
    reader = RecordedRules(upstream, mode="auto", max_age=60.0, limits=LIMITS)
    await evaluated(catalog, upstream, reader)  # finds no rule
    promql_asked = asyncio.Event()
    answer_query, answer_samples = upstream.query, upstream.query_samples

    async def query(promql: str, at: float, budget: ReadBudget) -> QueryResult:
        promql_asked.set()
        return await answer_query(promql, at, budget)

    async def query_samples(promql: str, at: float, budget: ReadBudget) -> tuple[RangeSeries, ...]:
        # Answers only once PromQL is asked: a refresh waiting for it first would hang.
        await promql_asked.wait()
        return tuple(every_scalar_rule(catalog, RULES_AT))

    upstream.query = query  # type: ignore[method-assign]
    upstream.query_samples = query_samples  # type: ignore[method-assign]
    looked = await asyncio.wait_for(evaluated(catalog, upstream, reader), timeout=5)
    # The rules found alongside answer from the next refresh on, at their own instant.
    assert looked.instant == NOW
    assert not any(f.recorded for f in looked.fields.values())
    assert looked.document(NOW)["recorded_rules"]["timestamp"] is None
    upstream.recorded = every_scalar_rule(catalog, RULES_AT)
    upstream.query = answer_query  # type: ignore[method-assign]
    upstream.query_samples = answer_samples  # type: ignore[method-assign]
    read = await asyncio.wait_for(evaluated(catalog, upstream, reader), timeout=5)
    assert read.instant == RULES_AT
    assert read.fields[("http", "total_requests")].recorded


async def test_mode_on_makes_a_missing_rule_an_error_and_never_asks_its_promql(
    catalog: Catalog,
) -> None:
    total = rule_of(catalog, "summary:http_total_requests")
    recorded = [
        s for s in every_scalar_rule(catalog, RULES_AT) if s.labels["__name__"] != total.record
    ]
    upstream = RecordingUpstream(recorded)
    snapshot = await evaluated(catalog, upstream, "on")
    error = snapshot.fields[("http", "total_requests")].error
    assert isinstance(error, RecordedRuleMissing)
    assert "summary:http_total_requests" in str(error)
    assert "EXPORTER_RECORDED_RULES=on" in str(error)
    assert total.promql not in {promql for promql, _ in upstream.asked}
    health = assess(catalog, snapshot, Environment(), as_of=NOW, max_staleness=None)
    [check] = [c for c in health.checks if c.name == "recorded_rules"]
    assert check.status is Status.CRITICAL
    assert check.reason is not None
    assert "summary:http_total_requests" in check.reason
    assert health.status is Status.CRITICAL
    # The rules answered: the upstream was reached.
    [upstream_check] = [c for c in health.checks if c.name == "upstream"]
    assert upstream_check.status is Status.OK


async def test_health_and_metrics_say_how_many_fields_the_rules_answered(
    catalog: Catalog,
) -> None:
    upstream = RecordingUpstream(every_scalar_rule(catalog, RULES_AT))
    snapshot = await evaluated(catalog, upstream, "auto")
    recorded = sum(f.recorded for f in snapshot.fields.values())
    assert 0 < recorded < len(catalog.fields())
    health = assess(catalog, snapshot, Environment(), as_of=NOW, max_staleness=None)
    [check] = [c for c in health.checks if c.name == "recorded_rules"]
    assert (check.status, check.value) == (Status.OK, recorded)
    assert check.display == f"{recorded} of {len(catalog.fields())} fields"
    refresher = Refresher(
        Evaluator(catalog, upstream, max_concurrency=4, limits=LIMITS, max_bytes=MAX_BYTES),
        window=WINDOW,
        interval=15.0,
        max_staleness=60.0,
    )
    refresher.current = snapshot
    gauges = {
        sample.name: sample.value
        for family in SummaryCollector(catalog, refresher).collect()
        for sample in family.samples
    }
    assert gauges["summary_exporter_recorded_fields"] == recorded


async def test_the_refresh_loop_starts_at_its_phase_of_the_interval(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    slept: list[float] = []

    async def sleep(delay: float) -> None:
        slept.append(delay)
        if len(slept) == 3:
            raise asyncio.CancelledError

    async def refresh_once(self: Any) -> None:
        return None

    monkeypatch.setattr("exporter.refresher.asyncio.sleep", sleep)
    monkeypatch.setattr(Refresher, "refresh_once", refresh_once)
    evaluator = Evaluator(
        catalog, RecordingUpstream(), max_concurrency=4, limits=LIMITS, max_bytes=MAX_BYTES
    )
    refresher = Refresher(evaluator, window=WINDOW, interval=15.0, max_staleness=60.0, phase=4.0)
    with pytest.raises(asyncio.CancelledError):
        await refresher.run()
    # The first refresh at once, the second interval + phase later, then every interval.
    assert [round(delay) for delay in slept] == [19, 15, 15]


def test_each_process_draws_its_phase_at_random_within_the_interval(catalog: Catalog) -> None:
    evaluator = Evaluator(
        catalog, RecordingUpstream(), max_concurrency=4, limits=LIMITS, max_bytes=MAX_BYTES
    )
    phases = {
        Refresher(evaluator, window=WINDOW, interval=15.0, max_staleness=60.0).phase
        for _ in range(50)
    }
    assert all(0.0 <= phase <= 15.0 for phase in phases)
    assert len(phases) > 40
