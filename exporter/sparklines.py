"""The status page's sparklines: the last hour of a few fields, one range query each.

They are fetched when a page needs them, once per instant (the background snapshot's, or a
requested one): cached and single-flighted, so page views never multiply the load on
Prometheus, and each new set spends one evaluation of the on-demand budget; with none left,
the page is drawn without them. A failed fetch is kept for a while too, and tried again after
`retry_after`.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

from exporter.catalog import Catalog, FieldSpec, Unit
from exporter.durations import parse_duration
from exporter.errors import Busy, UpstreamError
from exporter.prometheus import RangeSeries, ReadBudget
from exporter.singleflight import SingleFlightCache
from exporter.snapshot import FieldKey

# What on-call looks at first: traffic, errors, latency and providers.
SPARKLINE_FIELDS: tuple[FieldKey, ...] = (
    ("http", "request_rate_per_minute"),
    ("http", "error_rate"),
    ("http", "p95_latency_ms"),
    ("providers", "unavailable_providers"),
)
SPAN_SECONDS = 3600.0
STEP_SECONDS = 60.0
# Points of one sparkline: one per step over the span, and never more, whatever is answered.
POINTS_LIMIT = round(SPAN_SECONDS / STEP_SECONDS) + 1


class RangeUpstream(Protocol):
    async def query_range(
        self, promql: str, start: float, end: float, step: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]: ...


@dataclass(frozen=True)
class Sparkline:
    """A field's values over the hour before `end`; finite points only, a step where the field
    would be null has none (a gap)."""

    domain: str
    name: str
    unit: Unit
    promql: str
    start: float
    end: float
    step: float
    points: tuple[tuple[float, float], ...] = ()
    reason: str | None = None  # why there are no points
    failed: bool = False
    skipped: bool = False  # not asked: on-demand budget or concurrency spent


class Sparklines:
    """Sparklines by instant and window length: cached, single-flighted, bounded."""

    def __init__(
        self,
        client: RangeUpstream,
        *,
        retry_after: float,
        max_bytes: int,
        admit: Callable[[], None],
        cache_size: int = 16,
        max_concurrent: int = 2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`max_bytes` bounds the answers of one set together; `admit` spends the on-demand
        budget for a new set, or raises Busy."""
        self._client = client
        self._max_bytes = max_bytes
        self._drawn: SingleFlightCache[tuple[float, int], tuple[Sparkline, ...]] = (
            SingleFlightCache(
                size=cache_size,
                max_concurrent=max_concurrent,
                what="sets of sparklines",
                keep=lambda lines: retry_after if any(line.failed for line in lines) else math.inf,
                admit=admit,
                clock=clock,
            )
        )

    def forget(self) -> None:
        """Drops the sets kept, e.g. those of a catalog no longer in force."""
        self._drawn.clear()

    async def get(self, catalog: Catalog, at: float, window: str) -> tuple[Sparkline, ...]:
        """The sparklines of `catalog`'s fields (those it has) over the hour before `at`."""
        lines = _empty(catalog, at, window)
        try:
            return await self._drawn.get((at, parse_duration(window)), lambda: self._fetch(lines))
        except Busy as busy:
            reason = f"skipped: {busy}"
            return tuple(replace(line, reason=reason, skipped=True) for line in lines)

    async def _fetch(self, lines: list[Sparkline]) -> tuple[Sparkline, ...]:
        budget = ReadBudget(self._max_bytes)
        return tuple(await asyncio.gather(*(self._line(line, budget) for line in lines)))

    async def _line(self, line: Sparkline, budget: ReadBudget) -> Sparkline:
        try:
            series = await self._client.query_range(
                line.promql, line.start, line.end, line.step, budget
            )
        except UpstreamError as error:
            return replace(line, reason=f"query failed: {error}", failed=True)
        if len(series) > 1:
            return replace(line, reason=f"{len(series)} series where one was expected")
        points = tuple(
            (t, v)
            for t, v in (series[0].points if series else ())
            if math.isfinite(v) and line.start <= t <= line.end
        )[:POINTS_LIMIT]
        if not points:
            return replace(line, reason="no data in the last hour")
        return replace(line, points=points)


def _empty(catalog: Catalog, at: float, window: str) -> list[Sparkline]:
    return [
        _blank(catalog, domain, name, spec, at, window)
        for domain, name in SPARKLINE_FIELDS
        if (spec := catalog.field(f"{domain}.{name}")) is not None
    ]


def _blank(
    catalog: Catalog, domain: str, name: str, spec: FieldSpec, at: float, window: str
) -> Sparkline:
    return Sparkline(
        domain=domain,
        name=name,
        unit=spec.unit,
        # A count is 0 where its field would be, so that a quiet hour draws zeros, not gaps.
        promql=catalog.range_query(spec, window),
        start=at - SPAN_SECONDS,
        end=at,
        step=STEP_SECONDS,
    )
