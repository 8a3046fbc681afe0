"""A real Prometheus killed, restarted and frozen under a running exporter.

The data ends at the current time, so the background refresh (always at "now") sees traffic.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from exporter.app import SETTINGS
from exporter.catalog import Catalog
from harness.servers import PrometheusServer
from tests.exporter_client import body, distinct_queries, service, wait_for_document

pytestmark = pytest.mark.integration

INTERVAL = 1.0


def _asks_a_query(task: asyncio.Task[Any]) -> bool:
    """A task of the exporter's own that asks one catalog query of the upstream."""
    name: str = getattr(task.get_coro(), "__qualname__", "")
    return name == "evaluate.<locals>.ask"


def _writes_a_request_body(task: asyncio.Task[Any]) -> bool:
    """aiohttp's task that sends the body of one request in flight; on Python before 3.12 it
    is a task of its own until the loop first runs it, so a sample taken as a refresh sends its
    queries holds one per query sent."""
    name: str = getattr(task.get_coro(), "__qualname__", "")
    return name == "ClientRequest.write_bytes"


def fresh(document: dict[str, Any]) -> bool:
    return not document["stale"] and bool(document["metrics"]["http"]["total_requests"])


async def test_killed_prometheus_keeps_last_values_stale_and_recovers_within_an_interval(
    start_exporter: Any, live_prometheus: PrometheusServer
) -> None:
    client = await start_exporter(live_prometheus.url, refresh_interval=INTERVAL, query_timeout=0.5)
    good = await wait_for_document(client, fresh, within=5)
    live_prometheus.kill()
    stale = await wait_for_document(client, lambda d: d["stale"], within=3 * INTERVAL)
    assert stale["metrics"]["http"]["total_requests"] > 0
    assert stale["metrics"]["http"]["error_rate"] == pytest.approx(10.0)
    assert stale["upstream"]["up"] is False
    # Every field that had a value keeps it, marked stale.
    valued = [v for fields in good["metrics"].values() for v in fields.values() if v is not None]
    assert len(stale["stale_fields"]) == len(valued)
    await asyncio.sleep(1.5 * INTERVAL)
    older = await body(await client.get("/summary"))
    assert older["timestamp"] == stale["timestamp"]
    assert older["age_seconds"] > stale["age_seconds"] + 1
    metrics = await (await client.get("/metrics")).text()
    assert "summary_exporter_up 0.0\n" in metrics
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200

    live_prometheus.restart()
    restarted = time.monotonic()
    recovered = await wait_for_document(client, fresh, within=3 * INTERVAL)
    assert time.monotonic() - restarted <= INTERVAL + 0.5
    assert recovered["upstream"]["up"] is True
    assert "summary_exporter_up 1.0\n" in await (await client.get("/metrics")).text()


async def test_the_age_keeps_growing_through_an_outage_longer_than_max_staleness(
    start_exporter: Any, live_prometheus: PrometheusServer
) -> None:
    client = await start_exporter(
        live_prometheus.url, refresh_interval=INTERVAL, query_timeout=0.5, max_staleness=2
    )
    await wait_for_document(client, fresh, within=5)
    live_prometheus.kill()
    killed = time.monotonic()
    # Past max_staleness every value has turned null; the data is still as old as the kill.
    document = await wait_for_document(
        client, lambda d: d["metrics"]["http"]["total_requests"] is None, within=5
    )
    await asyncio.sleep(max(0.0, killed + 3.5 - time.monotonic()))
    document = await body(await client.get("/summary"))
    assert document["stale_fields"] == {}
    assert document["age_seconds"] >= 3.5
    age_gauge = service(client).registry.get_sample_value("summary_exporter_snapshot_age_seconds")
    assert age_gauge >= 3.5
    health = await body(await client.get("/health"))
    assert health["checks"]["snapshot_age"]["status"] == "critical"
    assert health["checks"]["snapshot_age"]["value"] >= 3.5
    assert health["timestamp"] == document["timestamp"]


async def test_frozen_prometheus_bounds_every_refresh_and_never_slows_the_service(
    start_exporter: Any, live_prometheus: PrometheusServer, catalog: Catalog
) -> None:
    client = await start_exporter(live_prometheus.url, refresh_interval=INTERVAL, query_timeout=0.5)
    await wait_for_document(client, fresh, within=5)
    registry = service(client).registry
    refreshes_before = registry.get_sample_value("summary_exporter_refresh_duration_seconds_count")
    live_prometheus.pause()
    slowest_answer, tasks, body_writers, query_tasks = 0.0, [], [], []
    try:
        # The loop's second refresh comes up to one interval late (its random phase): five
        # intervals hold three refreshes whatever the phase.
        deadline = time.monotonic() + 5 * INTERVAL
        while time.monotonic() < deadline:
            for path in ("/summary", "/healthz", "/metrics"):
                started = time.monotonic()
                assert (await client.get(path)).status == 200
                slowest_answer = max(slowest_answer, time.monotonic() - started)
            running = asyncio.all_tasks()
            writers = sum(1 for task in running if _writes_a_request_body(task))
            body_writers.append(writers)
            tasks.append(len(running) - writers)
            query_tasks.append(sum(1 for task in running if _asks_a_query(task)))
            await asyncio.sleep(0.05)
    finally:
        live_prometheus.resume()
    refreshes = registry.get_sample_value("summary_exporter_refresh_duration_seconds_count")
    within_interval = registry.get_sample_value(
        "summary_exporter_refresh_duration_seconds_bucket", {"le": "1.0"}
    )
    assert refreshes - refreshes_before >= 3  # refreshes went on, one after another
    assert within_interval == refreshes  # and each ended within its interval
    assert slowest_answer < 0.5  # milliseconds normally; generous for a loaded 2-core machine
    # Refreshes do not pile up: as many query tasks late in the freeze as early in it. (All
    # tasks would not do: aiohttp adds a short-lived body-writing task per request in flight.)
    half = len(query_tasks) // 2
    assert max(query_tasks[half:]) <= max(query_tasks[:half])
    # One refresh: a task per distinct query, and the server's own; besides, aiohttp's body
    # writers of the requests in flight: the catalog's queries, and the look for recorded rules.
    assert max(tasks) <= len(distinct_queries(catalog, "5m")) + 10
    assert max(body_writers) <= client.server.app[SETTINGS].max_concurrent_queries + 1
    document = await body(await client.get("/summary"))
    assert document["stale"] is True
    # Each query times out on its own (0.5 s), or the refresh's deadline (0.95 s) ends it.
    error = next(iter(document["stale_fields"].values()))["error"]
    assert "no answer within 0.5s" in error or "refresh did not finish within 1s" in error
