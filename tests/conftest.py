"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from exporter.app import create_app
from exporter.catalog import Catalog, load_catalog
from exporter.environment import Environment
from exporter.prometheus import PrometheusClient
from exporter.settings import Settings
from tests.fake_prometheus import FakePrometheus


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def write_catalog_with(path: Path, name: str, query: str) -> None:
    """Writes the built-in catalog to `path`, plus a field `http.<name>` asking `query`."""
    catalog = yaml.safe_load(resources.files("exporter").joinpath("catalog.yaml").read_text())
    catalog["domains"]["http"]["fields"][name] = {
        "query": query,
        "kind": "number",
        "unit": "count",
        "help": "A field of this test's own.",
    }
    path.write_text(yaml.safe_dump(catalog, sort_keys=False))


def make_settings(prometheus_url: str, **overrides: Any) -> Settings:
    """Settings for a test exporter; a long interval keeps the background loop out of the way."""
    values: dict[str, Any] = {
        "prometheus_url": prometheus_url,
        "host": "127.0.0.1",
        "refresh_interval": 3600.0,
        # Fractional on purpose: the upstream must accept how a fractional timeout is sent.
        "query_timeout": 4.5,
    }
    values.update(overrides)
    return Settings(**values)


# The shipped limits on table rows (EXPORTER_MAX_ENTITIES, EXPORTER_TOP_MODELS).
LIMITS = make_settings("http://127.0.0.1:9090").table_limits


@pytest.fixture
async def start_exporter(
    catalog: Catalog,
) -> AsyncIterator[Callable[..., Any]]:
    """Starts an exporter app on a free loopback port; every one started is closed afterwards."""
    clients: list[TestClient[Any, Any]] = []

    async def start(prometheus_url: str, **overrides: Any) -> TestClient[Any, Any]:
        settings = make_settings(prometheus_url, **overrides)
        # The gateway's APP_ENV and TESTING unset unless a test gives its environment.
        environment = overrides.get("environment") or Environment()
        # The catalog bound to the selector, as `serve` loads it.
        chosen = overrides.get("catalog_override") or (
            load_catalog(selector=settings.selector) if settings.selector else catalog
        )
        app = create_app(settings, chosen, environment)
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def fake_prometheus() -> AsyncIterator[FakePrometheus]:
    fake = await FakePrometheus().start()
    yield fake
    await fake.close()


@pytest.fixture
async def prometheus_client(fake_prometheus: FakePrometheus) -> AsyncIterator[PrometheusClient]:
    """Our client pointed at the fake upstream."""
    async with aiohttp.ClientSession() as session:
        yield PrometheusClient(
            session,
            fake_prometheus.url,
            display_url=fake_prometheus.url,
            timeout=5.0,
            max_response_bytes=1_000_000,
        )
