"""Sparklines: one range query per field and instant, gaps kept as gaps, failures retried."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from exporter.catalog import Catalog
from exporter.errors import Busy, UpstreamUnreachable
from exporter.prometheus import RangeSeries, ReadBudget
from exporter.sparklines import POINTS_LIMIT, SPAN_SECONDS, STEP_SECONDS, Sparklines

AT = 1_767_227_400.0
# A budget no test here comes near, and no on-demand budget.
OPTIONS: dict[str, Any] = {"retry_after": 15, "max_bytes": 1 << 20, "admit": lambda: None}


@dataclass
class RangeStub:
    """Answers range queries from a table; records them; can fail or wait on cue."""

    answers: dict[str, tuple[RangeSeries, ...]] = field(default_factory=dict)
    asked: list[tuple[str, float, float, float]] = field(default_factory=list)
    failing: bool = False
    release: asyncio.Event | None = None

    async def query_range(
        self, promql: str, start: float, end: float, step: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]:
        self.asked.append((promql, start, end, step))
        if self.release is not None:
            await self.release.wait()
        if self.failing:
            raise UpstreamUnreachable("http://prom", "cannot connect")
        return self.answers.get(promql, ())


def promql(catalog: Catalog, reference: str) -> str:
    spec = catalog.field(reference)
    assert spec is not None
    return spec.render("5m")


async def test_each_sparkline_is_one_range_query_over_the_hour_before_the_instant(
    catalog: Catalog,
) -> None:
    stub = RangeStub()
    lines = await Sparklines(stub, **OPTIONS).get(catalog, AT, "5m")
    assert [f"{line.domain}.{line.name}" for line in lines] == [
        "http.request_rate_per_minute",
        "http.error_rate",
        "http.p95_latency_ms",
        "providers.unavailable_providers",
    ]
    assert stub.asked == [(line.promql, AT - SPAN_SECONDS, AT, STEP_SECONDS) for line in lines]
    assert stub.asked[1][0] == promql(catalog, "http.error_rate")


async def test_a_count_asks_for_zero_where_its_metrics_exist_and_a_rate_for_itself(
    catalog: Catalog,
) -> None:
    lines = await Sparklines(RangeStub(), **OPTIONS).get(catalog, AT, "5m")
    unavailable = catalog.field("providers.unavailable_providers")
    assert unavailable is not None
    assert lines[3].promql == catalog.range_query(unavailable, "5m")
    assert lines[3].promql.endswith(
        "or on () 0 * sum(count by (__name__) (last_over_time("
        + (
            '{__name__=~"provider_availability|circuit_breaker_current_state'
            '|model_inference_requests_total|provider_error_rate"}[1h])))'
        )
    )
    assert lines[1].promql == promql(catalog, "http.error_rate")


async def test_a_missing_step_stays_a_gap_and_no_data_says_so(catalog: Catalog) -> None:
    rate = promql(catalog, "http.request_rate_per_minute")
    points = ((AT - 120, 40.0), (AT - 60, math.nan), (AT, 38.5))
    stub = RangeStub(answers={rate: (RangeSeries({}, points),)})
    lines = await Sparklines(stub, **OPTIONS).get(catalog, AT, "5m")
    assert lines[0].points == ((AT - 120, 40.0), (AT, 38.5))
    assert lines[0].reason is None
    assert lines[1].points == ()
    assert lines[1].reason == "no data in the last hour"


async def test_several_series_are_not_summed_here(catalog: Catalog) -> None:
    rate = promql(catalog, "http.request_rate_per_minute")
    two = (RangeSeries({"a": "1"}, ((AT, 1.0),)), RangeSeries({"a": "2"}, ((AT, 2.0),)))
    lines = await Sparklines(RangeStub(answers={rate: two}), **OPTIONS).get(catalog, AT, "5m")
    assert (lines[0].points, lines[0].reason) == ((), "2 series where one was expected")


async def test_views_of_one_instant_share_one_fetch(catalog: Catalog) -> None:
    release = asyncio.Event()
    stub = RangeStub(release=release)
    sparklines = Sparklines(stub, **OPTIONS)
    views = [asyncio.create_task(sparklines.get(catalog, AT, "5m")) for _ in range(10)]
    await asyncio.sleep(0.01)
    release.set()
    results = await asyncio.gather(*views)
    await sparklines.get(catalog, AT, "5m")
    assert len(stub.asked) == 4
    assert all(result == results[0] for result in results)


async def test_a_failed_fetch_is_kept_until_retry_after_then_asked_again(catalog: Catalog) -> None:
    now = [100.0]
    stub = RangeStub(failing=True)
    sparklines = Sparklines(stub, **OPTIONS, clock=lambda: now[0])
    failed = await sparklines.get(catalog, AT, "5m")
    assert failed[0].reason == "query failed: http://prom: cannot connect"
    await sparklines.get(catalog, AT, "5m")
    assert len(stub.asked) == 4
    now[0] += 16
    stub.failing = False
    await sparklines.get(catalog, AT, "5m")
    assert len(stub.asked) == 8


async def test_beyond_its_concurrency_bound_a_view_gets_no_sparklines_and_no_query(
    catalog: Catalog,
) -> None:
    release = asyncio.Event()
    stub = RangeStub(release=release)
    sparklines = Sparklines(stub, **OPTIONS, max_concurrent=1)
    first = asyncio.create_task(sparklines.get(catalog, AT, "5m"))
    await asyncio.sleep(0.01)
    other = await sparklines.get(catalog, AT - 60, "5m")
    assert {line.reason for line in other} == {
        "skipped: 1 sets of sparklines are being computed; retry"
    }
    assert len(stub.asked) == 4
    release.set()
    await first


async def test_a_new_set_spends_the_on_demand_budget_and_none_left_skips_every_query(
    catalog: Catalog,
) -> None:
    spent: list[float] = []

    def admit() -> None:
        if spent:
            raise Busy("the on-demand budget of 1 evaluations a minute is spent; retry")
        spent.append(AT)

    stub = RangeStub()
    sparklines = Sparklines(stub, **(OPTIONS | {"admit": admit}))
    drawn = await sparklines.get(catalog, AT, "5m")
    again = await sparklines.get(catalog, AT, "5m")  # cached: spends nothing
    skipped = await sparklines.get(catalog, AT - 60, "5m")
    assert drawn == again
    assert {line.reason for line in skipped} == {
        "skipped: the on-demand budget of 1 evaluations a minute is spent; retry"
    }
    assert len(stub.asked) == 4


async def test_a_line_keeps_points_of_its_hour_only_and_no_more_than_its_steps(
    catalog: Catalog,
) -> None:
    rate = promql(catalog, "http.request_rate_per_minute")
    flood = tuple((AT + 60 - n / 10, 1.0) for n in range(100_000))
    stub = RangeStub(answers={rate: (RangeSeries({}, flood),)})
    [line, *_] = await Sparklines(stub, **OPTIONS).get(catalog, AT, "5m")
    assert len(line.points) == POINTS_LIMIT == 61
    assert all(AT - SPAN_SECONDS <= t <= AT for t, _ in line.points)


async def test_fields_missing_from_a_custom_catalog_have_no_sparkline(catalog: Catalog) -> None:
    without_http = catalog.model_copy(
        update={"domains": {k: v for k, v in catalog.domains.items() if k != "http"}}
    )
    lines = await Sparklines(RangeStub(), **OPTIONS).get(without_http, AT, "5m")
    assert [line.name for line in lines] == ["unavailable_providers"]
