"""(a) Refresh: a whole refresh's wall time against the slowest query of that same refresh.

The refresh is the exporter's own (Refresher.refresh_once over its upstream client, shipped
settings: recording rules read in `auto` mode, none loaded), run in this process with every
query timed; all refreshes of a tier are evaluated at one pinned instant, so each asks
Prometheus the same questions of the same data.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass

from benchmarks.common import Section, evaluator, ratio
from exporter.prometheus import QueryResult, RangeSeries, ReadBudget
from exporter.recorded import RecordedUpstream
from exporter.refresher import Refresher
from exporter.settings import Settings
from exporter.upstream import session_for, upstream_for

GOAL = 1.2


class TimedUpstream:
    """The exporter's upstream client, timing each query it is asked."""

    def __init__(self, upstream: RecordedUpstream) -> None:
        self._upstream = upstream
        self.display_url = upstream.display_url
        self.latencies: list[float] = []

    async def query(self, promql: str, at: float, budget: ReadBudget) -> QueryResult:
        with self._timed():
            return await self._upstream.query(promql, at, budget)

    async def query_samples(
        self, promql: str, at: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]:
        with self._timed():
            return await self._upstream.query_samples(promql, at, budget)

    @contextlib.contextmanager
    def _timed(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.latencies.append(time.perf_counter() - started)


@dataclass(frozen=True)
class Tier:
    series: int
    queries: int
    walls: list[float]
    slowest: list[float]  # the slowest query of each refresh, in the same order
    failed_queries: int

    @property
    def ratio(self) -> float:
        """The median over refreshes of wall time / slowest query of that refresh."""
        return statistics.median(w / s for w, s in zip(self.walls, self.slowest, strict=True))


async def _measure(url: str, series: int, rounds: int) -> Tier:
    settings = Settings(prometheus_url=url)
    at = round(time.time(), 3)
    async with session_for(settings) as session:
        timed = TimedUpstream(upstream_for(settings, session))
        refresher = Refresher(
            evaluator(settings, timed),
            window=settings.window,
            interval=settings.refresh_interval,
            max_staleness=settings.effective_max_staleness,
            clock=lambda: at,
        )
        await refresher.refresh_once()  # warm-up: connections, Prometheus' caches
        walls, slowest, failed = [], [], 0
        for _ in range(rounds):
            timed.latencies.clear()
            started = time.perf_counter()
            snapshot = await refresher.refresh_once()
            walls.append(time.perf_counter() - started)
            slowest.append(max(timed.latencies))
            failed += len(snapshot.errors())
        return Tier(series, len(timed.latencies), walls, slowest, failed)


def measure(url: str, series: int, rounds: int) -> Tier:
    return asyncio.run(_measure(url, series, rounds))


def section(tiers: list[Tier], rounds: int) -> Section:
    result = Section("Refresh: wall time against the slowest query of the same refresh")
    result.add(
        f"{rounds} refreshes per tier after one to warm up, each query timed as the exporter's "
        "client sees it; medians, in ms. A refresh sends its distinct queries at once "
        "(EXPORTER_MAX_CONCURRENT_QUERIES), slowest first by the refresh before, so it should "
        "take little longer than its slowest query."
    )
    result.table(
        ["series", "queries", "refresh", "slowest query", "refresh / slowest", "failed"],
        [
            [
                f"{tier.series:,}",
                tier.queries,
                f"{statistics.median(tier.walls) * 1000:.1f}",
                f"{statistics.median(tier.slowest) * 1000:.1f}",
                ratio(tier.ratio),
                tier.failed_queries,
            ]
            for tier in tiers
        ],
    )
    for tier in tiers:
        passed = tier.ratio <= GOAL and tier.failed_queries == 0
        name = f"refresh / slowest query, {tier.series:,} series"
        result.check(name, ratio(tier.ratio), f"≤ {ratio(GOAL)}", passed)
    return result
