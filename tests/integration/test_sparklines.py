"""The page's sparklines from real engines holding the demo gateway's history.

The history starts at dataset.START and its incident's breaker opens 300 s in. A sparkline at
the instant `during_the_incident` (345 s in) covers the hour before it at one-minute steps:
the steps up to 15 s before the start have no data at all, those from 45 s on have.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from exporter.catalog import Catalog
from exporter.prometheus import PrometheusClient
from exporter.sparklines import Sparkline, Sparklines
from tests.integration.demo_history import History

pytestmark = pytest.mark.integration


@pytest.fixture
async def demo_lines(
    demo_engine_url: str, demo_history: History, catalog: Catalog
) -> AsyncIterator[dict[str, Sparkline]]:
    async with aiohttp.ClientSession() as session:
        client = PrometheusClient(
            session,
            demo_engine_url,
            display_url=demo_engine_url,
            timeout=10.0,
            max_response_bytes=1_000_000,
        )
        # No on-demand budget: one set is asked.
        sparklines = Sparklines(client, retry_after=15, max_bytes=1 << 20, admit=lambda: None)
        lines = await sparklines.get(catalog, float(demo_history.during_the_incident), "5m")
        yield {f"{line.domain}.{line.name}": line for line in lines}


async def test_a_count_is_drawn_as_its_zeros_and_only_its_absence_is_a_gap(
    demo_lines: dict[str, Sparkline], demo_history: History
) -> None:
    unavailable = demo_lines["providers.unavailable_providers"]
    start = demo_history.start
    # No point before its metrics had a series; zeros until the breaker opened; then one.
    assert unavailable.points == (
        (start + 45, 0.0),
        (start + 105, 0.0),
        (start + 165, 0.0),
        (start + 225, 0.0),
        (start + 285, 0.0),
        (start + 345, 1.0),
    )
    assert unavailable.reason is None


async def test_every_line_has_a_point_at_each_step_with_data_and_none_before(
    demo_lines: dict[str, Sparkline], demo_history: History
) -> None:
    steps = [demo_history.start + seconds for seconds in range(45, 346, 60)]
    for name in ("http.request_rate_per_minute", "http.error_rate", "http.p95_latency_ms"):
        assert [at for at, _ in demo_lines[name].points] == steps, name
    # The first minute's one 5xx is a series born at 1: VictoriaMetrics counts it, Prometheus
    # cannot (an increase needs two values), so only its size is common to both. The
    # incident's failures, at the last step, are the most.
    error_rate = [value for _, value in demo_lines["http.error_rate"].points]
    assert 0.0 <= error_rate[0] < 0.1
    assert error_rate[-1] == max(error_rate) > 1.0
