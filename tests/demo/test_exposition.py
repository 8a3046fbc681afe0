"""The demo gateway's /metrics: OpenMetrics with exemplars when asked for, plain text otherwise."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser
from prometheus_client.parser import text_string_to_metric_families as parse_text

from demo.gateway import create_app
from tests.demo.conftest import History, simulate

# What Prometheus 2.42 sends when it scrapes.
PROMETHEUS_ACCEPT = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
TRACE_ID = re.compile(r"[0-9a-f]{32}")
Client = TestClient[web.Request, web.Application]


def parse_openmetrics(body: str) -> list[Metric]:
    """prometheus-client's OpenMetrics parser, which is strict about the format."""
    families: list[Metric] = list(
        openmetrics_parser.text_string_to_metric_families(body)  # type: ignore[no-untyped-call]
    )
    return families


@pytest.fixture
def history() -> History:
    return simulate(seed=3, until=90.0)  # past the first incident's start


@pytest.fixture
async def client(history: History) -> AsyncIterator[Client]:
    app = create_app(history.registry, history.simulation)
    client: Client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    yield client
    await client.close()


async def scrape(client: Client, accept: str | None) -> tuple[str, str]:
    headers = {} if accept is None else {"Accept": accept}
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200
    return response.headers["Content-Type"], await response.text()


async def test_prometheus_gets_openmetrics_with_exemplars_on_the_inference_metrics(
    client: Client,
) -> None:
    content_type, body = await scrape(client, PROMETHEUS_ACCEPT)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith("# EOF\n")
    families = {family.name: family for family in parse_openmetrics(body)}
    for name, sample_name in [
        ("model_inference_requests", "model_inference_requests_total"),
        ("model_inference_duration_seconds", "model_inference_duration_seconds_bucket"),
        ("tokens_used", "tokens_used_total"),
        ("credits_used", "credits_used_total"),
        ("fastapi_requests_duration_seconds", "fastapi_requests_duration_seconds_bucket"),
    ]:
        exemplars = [
            s.exemplar for s in families[name].samples if s.name == sample_name and s.exemplar
        ]
        assert exemplars, name
        assert all(TRACE_ID.fullmatch(e.labels["trace_id"]) for e in exemplars), name


async def test_openmetrics_carries_a_created_series_for_every_counter(
    client: Client,
) -> None:
    _, body = await scrape(client, PROMETHEUS_ACCEPT)
    counters = [f for f in parse_openmetrics(body) if f.type == "counter"]
    # prometheus-client's own process and GC collectors write none, in any gateway.
    for family in (f for f in counters if not f.name.startswith(("process_", "python_"))):
        series = {
            tuple(sorted(s.labels.items())) for s in family.samples if s.name.endswith("_total")
        }
        created = {
            tuple(sorted(s.labels.items())) for s in family.samples if s.name.endswith("_created")
        }
        assert created == series, family.name


@pytest.mark.parametrize("accept", [None, "text/plain;version=0.0.4", "*/*"])
async def test_any_other_scraper_gets_the_prometheus_text_format(
    client: Client, accept: str | None
) -> None:
    content_type, body = await scrape(client, accept)
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert "# EOF" not in body
    assert " # {" not in body  # no exemplars
    names = {family.name for family in parse_text(body)}
    assert {"model_inference_requests", "circuit_breaker_current_state", "redis_up"} <= names


async def test_a_scrape_reads_redis_as_it_is_at_that_moment(
    client: Client, history: History
) -> None:
    _, first = await scrape(client, PROMETHEUS_ACCEPT)
    history.simulation.advance_to(120.0)
    _, second = await scrape(client, PROMETHEUS_ACCEPT)

    def uptime(body: str) -> float:
        [family] = [f for f in parse_openmetrics(body) if f.name == "redis_uptime_in_seconds"]
        return float(family.samples[0].value)

    assert uptime(second) - uptime(first) == 30.0
    assert "redis_up 1.0" in second
