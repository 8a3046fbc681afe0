"""Keeps the summary prepared: a background refresh loop, and bounded on-demand evaluations.

Requests never query Prometheus themselves: they read the latest snapshot, or share one
cached, single-flighted evaluation for a given window and instant (exporter.singleflight).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from exporter.catalog import Catalog
from exporter.durations import parse_duration
from exporter.errors import Busy, UpstreamTimeout
from exporter.prometheus import Upstream
from exporter.recorded import RecordedRules
from exporter.settings import TableLimits
from exporter.singleflight import SingleFlightCache
from exporter.snapshot import (
    FieldKey,
    FieldValue,
    QueryDurations,
    Snapshot,
    Source,
    carry_over,
    evaluate,
)

log = logging.getLogger("exporter.refresher")

Clock = Callable[[], float]


@dataclass(frozen=True)
class RefreshOutcome:
    snapshot: Snapshot
    duration: float


class Evaluator:
    """Evaluates the whole catalog at one instant, within a deadline; `catalog` is the one in
    force, replaced when its file is reloaded. The background refresh reads the recording
    rules first when `recorded` is given."""

    def __init__(
        self,
        catalog: Catalog,
        client: Upstream,
        *,
        max_concurrency: int,
        limits: TableLimits,
        max_bytes: int,
        recorded: RecordedRules | None = None,
    ) -> None:
        self.catalog = catalog
        self.client = client
        self._max_concurrency = max_concurrency
        self._limits = limits
        self._max_bytes = max_bytes
        self._recorded = recorded
        self._durations = QueryDurations()

    async def __call__(self, at: float, window: str, source: Source) -> Snapshot:
        return await evaluate(
            self.catalog,
            self.client,
            at=at,
            window=window,
            max_concurrency=self._max_concurrency,
            limits=self._limits,
            max_bytes=self._max_bytes,
            source=source,
            # Rules are made for the default window and read at the current time only.
            recorded=self._recorded if source == "background" else None,
            # The background refresh asks the same queries every time: what one took is known.
            durations=self._durations if source == "background" else None,
        )


class Refresher:
    """Refreshes the default-window snapshot every interval; refreshes never overlap."""

    def __init__(
        self,
        evaluator: Evaluator,
        *,
        window: str,
        interval: float,
        max_staleness: float,
        on_refresh: Callable[[RefreshOutcome], None] = lambda _: None,
        clock: Clock = time.time,
        phase: float | None = None,
    ) -> None:
        self._evaluator = evaluator
        self.window = window
        self.interval = interval
        # Where in the interval this process refreshes: at random, so that the sidecars of a
        # rollout, started in the same second, do not all ask Prometheus in the same second.
        self.phase = random.uniform(0.0, interval) if phase is None else phase
        self._max_staleness = max_staleness
        self._on_refresh = on_refresh
        self._clock = clock
        self.current: Snapshot | None = None
        self.last_success: float | None = None
        self._failing: dict[FieldKey, str] = {}

    async def refresh_once(self) -> Snapshot:
        started = time.monotonic()
        at = round(self._clock(), 3)
        try:
            # The deadline keeps a refresh inside its interval even when queries queue up.
            async with asyncio.timeout(self.interval * 0.95):
                latest = await self._evaluator(at, self.window, "background")
        except TimeoutError:
            latest = _all_failed(self._evaluator, at, self.window, self.interval)
        snapshot = carry_over(self.current, latest, self._max_staleness)
        self.current = snapshot
        if latest.reached_upstream:
            self.last_success = at
        self._log_changes(latest)
        self._on_refresh(RefreshOutcome(snapshot, time.monotonic() - started))
        return snapshot

    async def run(self) -> None:
        """Refresh at once, then forever at this process's phase of the interval: the next
        refresh starts an interval after the previous one started, and the second one `phase`
        later than that."""
        delay = self.phase
        while True:
            started = time.monotonic()
            try:
                await self.refresh_once()
            except Exception:  # the loop must survive any bug in one refresh
                log.exception("event=refresh_crashed")
            await asyncio.sleep(max(0.0, self.interval + delay - (time.monotonic() - started)))
            delay = 0.0

    def _log_changes(self, latest: Snapshot) -> None:
        """One line per change of a failure (grouped by message), not one per refresh."""
        failing = {key: str(f.error) for key, f in latest.fields.items() if f.error is not None}
        fields_by_error: dict[str, list[FieldKey]] = {}
        for key, message in failing.items():
            if self._failing.get(key) != message:
                fields_by_error.setdefault(message, []).append(key)
        for message, keys in fields_by_error.items():
            domain, name = keys[0]
            # A query-specific error (bad_data, execution) hits one field: show its PromQL.
            promql = (
                latest.catalog.domains[domain].fields[name].render(self.window)
                if len(keys) == 1
                else ""
            )
            log.warning(
                "event=query_failed field=%s.%s fields=%d error=%r promql=%r",
                domain,
                name,
                len(keys),
                message,
                promql,
            )
        recovered = sorted(self._failing.keys() - failing.keys())
        if recovered:
            log.info("event=query_recovered fields=%d first=%s.%s", len(recovered), *recovered[0])
        if bool(failing) != bool(self._failing):
            state = "failing" if failing else "ok"
            log.info("event=refresh_state state=%s failing_fields=%d", state, len(failing))
        self._failing = failing


def _all_failed(evaluator: Evaluator, at: float, window: str, interval: float) -> Snapshot:
    error = UpstreamTimeout(
        evaluator.client.display_url, f"refresh did not finish within {interval:g}s"
    )
    fields = {
        (domain, name): FieldValue(None, at, reason=f"query failed: {error}", error=error)
        for domain, name, _ in evaluator.catalog.fields()
    }
    return Snapshot(
        instant=at,
        window=window,
        fields=fields,
        upstream=evaluator.client.display_url,
        catalog=evaluator.catalog,
    )


class OnDemandBudget:
    """Evaluations on request a minute (EXPORTER_ON_DEMAND_PER_MINUTE), whatever asks for
    them: an on-demand summary is one, and so is a set of the status page's sparklines."""

    def __init__(self, per_minute: int, monotonic: Clock = time.monotonic) -> None:
        self._bucket = TokenBucket(per_minute, monotonic)

    def spend(self) -> None:
        """Takes one evaluation, or raises Busy saying when there will be one again."""
        wait = self._bucket.take()
        if wait > 0:
            raise Busy(
                f"the on-demand budget of {self._bucket.per_minute} evaluations a minute is"
                " spent; retry",
                retry_after=math.ceil(wait),
            )


class OnDemand:
    """Snapshots for a requested window or instant: cached, single-flighted, bounded.

    They are keyed by the window's length, not its spelling: `7d` and `1w` share one
    evaluation, and each answer names its window as its request wrote it.
    """

    def __init__(
        self,
        evaluate_at: Callable[[float, str, Source], Awaitable[Snapshot]],
        *,
        cache_size: int,
        max_concurrent: int,
        budget: OnDemandBudget,
        monotonic: Clock = time.monotonic,
    ) -> None:
        self._evaluate_at = evaluate_at
        # A snapshot with failed queries is not kept: the next request asks again.
        self._snapshots: SingleFlightCache[tuple[float, int], Snapshot] = SingleFlightCache(
            size=cache_size,
            max_concurrent=max_concurrent,
            what="on-demand summaries",
            keep=lambda snapshot: 0 if snapshot.errors() else math.inf,
            admit=budget.spend,
            clock=monotonic,
        )

    def forget(self) -> None:
        """Drops the snapshots kept, e.g. those of a catalog no longer in force."""
        self._snapshots.clear()

    async def get(self, at: float, window: str) -> Snapshot:
        snapshot = await self._snapshots.get(
            (at, parse_duration(window)), lambda: self._evaluate_at(at, window, "on_demand")
        )
        return snapshot if snapshot.window == window else replace(snapshot, window=window)


class TokenBucket:
    """At most `per_minute` takes a minute, and never more than that in one burst."""

    def __init__(self, per_minute: int, monotonic: Clock) -> None:
        self.per_minute = per_minute
        self._monotonic = monotonic
        self._tokens = float(per_minute)
        self._updated = monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one will be there."""
        now = self._monotonic()
        rate = self.per_minute / 60
        self._tokens = min(self.per_minute, self._tokens + (now - self._updated) * rate)
        self._updated = now
        if self._tokens >= 1:
            self._tokens -= 1
            return 0.0
        return (1 - self._tokens) / rate


def grid_instant(now: float, interval: float) -> float:
    """`now` rounded down to the refresh grid, so requests within one interval share a result."""
    return math.floor(now / interval) * interval
