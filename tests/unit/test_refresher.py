"""The refresh loop and the on-demand cache: bounded in time, count and memory."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from exporter.catalog import Catalog, load_catalog
from exporter.errors import Busy
from exporter.prometheus import QueryResult
from exporter.refresher import (
    Evaluator,
    OnDemand,
    OnDemandBudget,
    Refresher,
    RefreshOutcome,
    grid_instant,
)
from exporter.snapshot import Snapshot, Source
from tests.conftest import LIMITS
from tests.fake_prometheus import FakePrometheus


def refresher_for(catalog: Catalog, client: Any, **options: Any) -> Refresher:
    values: dict[str, Any] = {"window": "5m", "interval": 1.0, "max_staleness": 10.0}
    values.update(options)
    evaluator = Evaluator(catalog, client, max_concurrency=4, limits=LIMITS, max_bytes=1 << 20)
    return Refresher(evaluator, **values)


async def test_a_refresh_ends_within_its_interval_when_the_upstream_hangs(
    catalog: Catalog, fake_prometheus: FakePrometheus, prometheus_client: Any
) -> None:
    fake_prometheus.delay = 30
    outcomes: list[RefreshOutcome] = []
    refresher = refresher_for(catalog, prometheus_client, interval=0.5, on_refresh=outcomes.append)
    snapshot = await asyncio.wait_for(refresher.refresh_once(), timeout=2)
    assert not snapshot.reached_upstream
    assert outcomes[0].duration < 0.6
    reason = snapshot.fields[("http", "total_requests")].reason
    assert reason == f"query failed: {fake_prometheus.url}: refresh did not finish within 0.5s"


async def test_a_refresh_sends_first_the_queries_that_took_longest_the_last_time(
    catalog: Catalog,
) -> None:
    slowest = catalog.queries("5m")[-1]
    asked: list[str] = []

    class SlowOnOneQuery:
        display_url = "http://prometheus:9090"

        async def query(self, promql: str, at: float, budget: Any) -> QueryResult:
            asked.append(promql)
            await asyncio.sleep(0.05 if promql == slowest else 0.0)
            return QueryResult((), upstream=self.display_url)

    refresher = refresher_for(catalog, SlowOnOneQuery())
    await refresher.refresh_once()
    assert asked[-1] == slowest  # never asked before: sent in catalog order
    asked.clear()
    await refresher.refresh_once()
    # The refresh then ends about when its slowest query does, not that long after the rest.
    assert asked[0] == slowest
    assert sorted(asked) == sorted(catalog.queries("5m"))


async def test_a_refresh_cut_short_by_its_deadline_leaves_none_of_its_queries_running(
    catalog: Catalog,
) -> None:
    class Hanging:
        display_url = "http://prometheus:9090"

        async def query(self, promql: str, at: float, budget: Any) -> QueryResult:
            try:
                await asyncio.Event().wait()
            finally:
                # A request in flight takes a few turns of the loop to unwind (its connection).
                for _ in range(3):
                    await asyncio.sleep(0)
            raise AssertionError("never answered")

    refresher = refresher_for(catalog, Hanging(), interval=0.2)
    snapshot = await refresher.refresh_once()
    assert not snapshot.reached_upstream
    # The next refresh starts with none of this one's queries still running.
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_failures_are_logged_once_per_change_not_once_per_refresh(
    catalog: Catalog,
    fake_prometheus: FakePrometheus,
    prometheus_client: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_prometheus.error = (400, "bad_data", "parse error")
    refresher = refresher_for(catalog, prometheus_client)
    with caplog.at_level(logging.INFO, logger="exporter.refresher"):
        for _ in range(3):
            await refresher.refresh_once()
        failed = [r for r in caplog.records if "event=query_failed" in r.getMessage()]
        assert len(failed) == 1
        assert "fields=49" in failed[0].getMessage()
        fake_prometheus.error = None
        await refresher.refresh_once()
        await refresher.refresh_once()
    states = [r.getMessage() for r in caplog.records if "event=refresh_state" in r.getMessage()]
    assert states == [
        "event=refresh_state state=failing failing_fields=49",
        "event=refresh_state state=ok failing_fields=0",
    ]


def _snapshot(at: float, window: str, source: Source) -> Snapshot:
    return Snapshot(
        instant=at, window=window, fields={}, upstream="u", catalog=load_catalog(), source=source
    )


async def test_on_demand_cache_is_bounded_in_entries() -> None:
    calls: list[tuple[float, str]] = []

    async def evaluate(at: float, window: str, source: Source) -> Snapshot:
        calls.append((at, window))
        return _snapshot(at, window, source)

    on_demand = OnDemand(evaluate, cache_size=3, max_concurrent=2, budget=OnDemandBudget(60))
    for minutes in range(1, 6):
        await on_demand.get(100.0, f"{minutes}m")
    await on_demand.get(100.0, "5m")
    await on_demand.get(100.0, "1m")
    assert calls[-1] == (100.0, "1m")  # evicted, so evaluated again
    assert len(calls) == 6


async def test_on_demand_refuses_beyond_its_concurrency_bound() -> None:
    release = asyncio.Event()

    async def evaluate(at: float, window: str, source: Source) -> Snapshot:
        await release.wait()
        return _snapshot(at, window, source)

    on_demand = OnDemand(evaluate, cache_size=3, max_concurrent=1, budget=OnDemandBudget(60))
    first = asyncio.create_task(on_demand.get(1.0, "1m"))
    await asyncio.sleep(0)
    with pytest.raises(Busy):
        await on_demand.get(1.0, "2m")
    same = asyncio.create_task(on_demand.get(1.0, "1m"))
    release.set()
    assert (await first) is (await same)


def test_grid_instant_rounds_down_to_the_refresh_interval() -> None:
    assert grid_instant(1000.7, 15) == 990
