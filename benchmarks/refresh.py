"""2. Refresh: full refresh wall time against the slowest single query of the same refresh.

The refresh is the exporter's own (Settings defaults, its upstream client, Evaluator and
Refresher.refresh_once), run in this process with every query timed, so the slowest query of
the very same refresh is known. Beside it, at the same instant: each query asked alone, and the
sequential script a user would otherwise write with prometheus-api-client.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from prometheus_api_client import PrometheusConnect

from benchmarks.common import Section, median, query_label, ratio, table
from exporter.catalog import load_catalog
from exporter.durations import format_duration
from exporter.prometheus import QueryResult, ReadBudget, Upstream
from exporter.refresher import Evaluator, Refresher
from exporter.settings import Settings
from exporter.upstream import session_for, upstream_for

GOAL = 1.2


class TimedUpstream:
    """The exporter's upstream client, timing each query it is asked."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream
        self.display_url = upstream.display_url
        self.latencies: dict[str, float] = {}

    async def query(self, promql: str, at: float, budget: ReadBudget) -> QueryResult:
        started = time.perf_counter()
        try:
            return await self._upstream.query(promql, at, budget)
        finally:
            self.latencies[promql] = time.perf_counter() - started


@dataclass
class Refreshes:
    """The refreshes of one configuration (queries in flight at most); seconds."""

    concurrency: int
    walls: list[float] = field(default_factory=list)
    slowest: list[float] = field(default_factory=list)
    failed_queries: int = 0

    @property
    def ratio(self) -> float:
        """Median over refreshes of wall time / slowest query of that same refresh."""
        return median([w / s for w, s in zip(self.walls, self.slowest, strict=True)])


@dataclass
class Figures:
    """One tier: the refreshes of each configuration, the queries alone, the user's script."""

    series: int
    window: str
    configs: list[Refreshes]
    queries: list[str] = field(default_factory=list)
    alone: dict[str, float] = field(default_factory=dict)
    scripts: list[float] = field(default_factory=list)


def _user_script(url: str, queries: list[str], at: float) -> float:
    """What a user would write instead: each query in turn with prometheus-api-client."""
    prometheus = PrometheusConnect(url=url, disable_ssl=True)
    started = time.perf_counter()
    for promql in queries:
        prometheus.custom_query(promql, params={"time": f"{at:.3f}"})
    return time.perf_counter() - started


async def _measure(url: str, series: int, rounds: int) -> Figures:
    # The shipped defaults (concurrency, timeout, window), not this machine's EXPORTER_*.
    settings = Settings(prometheus_url=url, _env_prefix="BENCHMARK_UNUSED_")  # type: ignore[call-arg]
    catalog = load_catalog(None)
    at = round(time.time(), 3)  # one instant for every refresh, query and script
    async with session_for(settings) as session:
        timed = TimedUpstream(upstream_for(settings, session))

        def refresher(concurrency: int) -> Refresher:
            return Refresher(
                Evaluator(
                    catalog,
                    timed,
                    max_concurrency=concurrency,
                    limits=settings.table_limits,
                    max_bytes=settings.max_refresh_bytes,
                ),
                window=format_duration(settings.window_ms),
                interval=settings.refresh_interval,
                max_staleness=settings.effective_max_staleness,
                clock=lambda: at,
            )

        await refresher(settings.max_concurrent_queries).refresh_once()  # warm-up
        queries = list(timed.latencies)
        # The shipped default, and every distinct query in flight at once.
        figures = Figures(
            series,
            format_duration(settings.window_ms),
            [Refreshes(settings.max_concurrent_queries), Refreshes(len(queries))],
        )
        figures.queries = queries
        refreshers = [refresher(config.concurrency) for config in figures.configs]
        for _ in range(rounds):
            # Side by side, in turn on the same data: each configuration, then the script.
            for config, configured in zip(figures.configs, refreshers, strict=True):
                timed.latencies.clear()
                started = time.perf_counter()
                snapshot = await configured.refresh_once()
                config.walls.append(time.perf_counter() - started)
                config.slowest.append(max(timed.latencies.values()))
                config.failed_queries += len(snapshot.errors())
            figures.scripts.append(await asyncio.to_thread(_user_script, url, queries, at))
        for promql in queries:
            started = time.perf_counter()
            await timed.query(promql, at, ReadBudget(settings.max_refresh_bytes))
            figures.alone[promql] = time.perf_counter() - started
    return figures


def measure(url: str, series: int, *, rounds: int) -> Figures:
    return asyncio.run(_measure(url, series, rounds))


def section(tiers: list[Figures], rounds: int) -> Section:
    result = Section("2. Refresh: wall time against the slowest query of the same refresh")
    result.add(
        f"The exporter's refresh (Refresher.refresh_once over its own upstream client, shipped "
        f"defaults) at one pinned instant, every query timed, {rounds} rounds per tier; each "
        f"round runs, in turn: a refresh with the shipped EXPORTER_MAX_CONCURRENT_QUERIES, a "
        f"refresh with every distinct query in flight at once, and the sequential script a "
        f"user would write with prometheus-api-client (custom_query for each of the same "
        f"queries, same instant). Then each query alone, one after the other. Medians; ms."
    )
    rows: list[list[object]] = []
    for tier in tiers:
        script = median(tier.scripts)
        slowest_alone = max(tier.alone.values())
        for config in tier.configs:
            wall = median(config.walls)
            rows.append(
                [
                    f"{tier.series:,}",
                    len(tier.queries),
                    config.concurrency,
                    f"{wall * 1000:.1f}",
                    f"{median(config.slowest) * 1000:.1f}",
                    ratio(config.ratio),
                    f"{slowest_alone * 1000:.1f}",
                    ratio(wall / slowest_alone),
                    f"{sum(tier.alone.values()) * 1000:.1f}",
                    f"{script * 1000:.1f}",
                    ratio(script / wall),
                    config.failed_queries,
                ]
            )
        shipped = tier.configs[0]
        result.check(
            f"refresh / slowest query of the refresh, {tier.series:,} series",
            ratio(shipped.ratio),
            f"≤ {ratio(GOAL)}",
            shipped.ratio <= GOAL and shipped.failed_queries == 0,
        )
    result.add(
        table(
            [
                "series",
                "queries",
                "in flight",
                "refresh",
                "slowest query in it",
                "refresh / slowest",
                "slowest query alone",
                "refresh / slowest alone",
                "all queries alone, summed",
                "prometheus-api-client script",
                "script / refresh",
                "failed queries",
            ],
            rows,
        )
    )
    result.add(_reading(tiers))
    return result


def _reading(tiers: list[Figures]) -> str:
    """What the figures say about the concurrency setting, from this run's numbers."""
    lines = []
    for tier in tiers:
        shipped, all_at_once = tier.configs
        slowest = max(tier.alone, key=lambda promql: tier.alone[promql])
        waves = -(-len(tier.queries) // shipped.concurrency)
        lines.append(
            f"- {tier.series:,} series: {len(tier.queries)} queries at most "
            f"{shipped.concurrency} in flight run in {waves} waves, so the refresh takes "
            f"{ratio(shipped.ratio)} its slowest query; all in flight, {ratio(all_at_once.ratio)}"
            f", and the refresh takes {ratio(median(all_at_once.walls) / median(shipped.walls))} "
            f"the time. The queries alone add up to "
            f"{sum(tier.alone.values()) * 1000:.0f} ms: when that is close to the refresh, "
            f"Prometheus' CPU, not waiting, bounds the refresh on this machine. Slowest "
            f"alone: {query_label(slowest, tier.window)}, {tier.alone[slowest] * 1000:.0f} ms."
        )
    return "\n".join(["How to read it:", "", *lines])
