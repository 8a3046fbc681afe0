"""What reaches Prometheus: never a request string, and a bounded number of queries.

Prometheus' own query log is the witness: it records every query it evaluates.
"""

from __future__ import annotations

import asyncio
import json
import re
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


def logged_queries(server: PrometheusServer) -> list[str]:
    lines = server.query_log.read_text().splitlines() if server.query_log.exists() else []
    return [json.loads(line)["params"]["query"] for line in lines if line.strip()]


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
