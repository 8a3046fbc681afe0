"""What reaches Prometheus: never a request string, and a bounded number of queries.

Prometheus' own query log is the witness: it records every query it evaluates.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from typing import Any

import pytest

from exporter.catalog import Catalog
from harness.servers import PrometheusServer
from tests.exporter_client import distinct_queries, started
from tests.integration import dataset

pytestmark = pytest.mark.integration

INJECTIONS = [
    "5m])) or vector(1) or sum(x[5m",
    "5m] offset 1h",
    '5m"} or up{job="x',
    "${window}",
    "$window",
    "5m\nvector(666)",
    "1e3s",
    "5m;drop",
]


def logged(server: PrometheusServer) -> list[dict[str, Any]]:
    """The parameters of every query Prometheus has run, from its query log."""
    return [entry["params"] for entry in server.logged()]


def logged_queries(server: PrometheusServer) -> list[str]:
    return [params["query"] for params in logged(server)]


def range_queries(server: PrometheusServer) -> int:
    return sum(1 for params in logged(server) if params["step"] > 0)


async def test_no_request_string_ever_reaches_promql(
    start_exporter: Any, prometheus: PrometheusServer
) -> None:
    client = await started(start_exporter, prometheus.url)
    before = len(logged_queries(prometheus))
    for injection in INJECTIONS:
        for name in ("window", "time"):
            response = await client.get("/summary", params={name: injection})
            assert response.status == 400, (name, injection)
    valid = await client.get("/summary", params={"window": "90s", "time": str(dataset.BUSY_AT)})
    assert valid.status == 200
    queries = logged_queries(prometheus)[before:]
    assert queries  # the valid request was evaluated
    # Every range is the requested window, or the catalog's own lookback.
    ranges = {r for query in queries for r in re.findall(r"\[([^\]]*)\]", query)}
    assert ranges == {"1m30s", "1h", "1m:1s", "1h:1m", "1m30s:1m"}
    for query in queries:
        for marker in ("vector(1)", "vector(666)", "offset 1h", "up{", ";drop", "$window", "${"):
            assert marker not in query


async def test_a_flood_of_distinct_windows_makes_a_bounded_number_of_queries(
    start_exporter: Any, prometheus: PrometheusServer, catalog: Catalog
) -> None:
    per_minute = 5
    client = await started(
        start_exporter, prometheus.url, on_demand_per_minute=per_minute, max_concurrent_on_demand=2
    )
    before = len(logged_queries(prometheus))
    gate = asyncio.Semaphore(50)

    async def ask(minutes: int) -> int:
        async with gate:
            params = {"window": f"{minutes}m", "time": str(dataset.BUSY_AT)}
            response = await client.get("/summary", params=params)
            await response.read()
            return int(response.status)

    statuses = await asyncio.gather(*(ask(minutes) for minutes in range(1, 501)))
    distinct_per_summary = len(distinct_queries(catalog, "5m"))
    queries = len(logged_queries(prometheus)) - before
    assert set(statuses) == {200, 429}
    assert statuses.count(200) <= per_minute + 1  # a token may come back during the flood
    assert queries <= (per_minute + 1) * distinct_per_summary
    assert queries == statuses.count(200) * distinct_per_summary


async def test_status_pages_spend_the_on_demand_budget_for_their_sparklines(
    start_exporter: Any, prometheus: PrometheusServer
) -> None:
    per_minute, instants = 12, 8  # a token comes back every 5 s: one during this test at most
    client = await started(start_exporter, prometheus.url, on_demand_per_minute=per_minute)
    started_at = time.monotonic()
    at = [{"time": str(dataset.BUSY_AT - n), "window": "30d"} for n in range(instants)]
    for parameters in at:  # the summaries the pages show, evaluated and kept first
        assert (await client.get("/summary", params=parameters)).status == 200
    before = range_queries(prometheus)
    pages = []
    for parameters in at * 3:  # cycling ?time= over the instants, three times
        response = await client.get("/", params=parameters)
        pages.append((response.status, await response.text()))
    asked = range_queries(prometheus) - before
    # Each new set of sparklines (4 range queries) spends one evaluation of the budget: what
    # the summaries left, and what came back since.
    came_back = math.ceil((time.monotonic() - started_at) * per_minute / 60)
    assert asked <= 4 * (per_minute + came_back - instants)
    assert {status for status, _ in pages} == {200}
    skipped = "Sparklines skipped: the on-demand budget of 12 evaluations a minute is spent"
    assert sum(skipped in text for _, text in pages) >= 3 * (2 * instants - per_minute - 1)
    # With the budget spent (what came back spent too), the live page is still drawn, without
    # asking for its sparklines.
    for minutes in range(1, 50):
        if (await client.get("/summary", params={"window": f"{minutes}m"})).status == 429:
            break
    spent = range_queries(prometheus)
    page = await client.get("/")
    assert page.status == 200
    assert skipped in await page.text()
    assert range_queries(prometheus) == spent
