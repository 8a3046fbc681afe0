"""Real servers loaded with the gateway dataset, started once per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration import dataset
from tests.integration.servers import PrometheusServer, VictoriaMetricsServer, require_binary

ENGINES = ("prometheus", "victoria-metrics")


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    require_binary("prometheus")
    require_binary("promtool")
    server = PrometheusServer.start(list(dataset.samples()), tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetricsServer]:
    require_binary("victoria-metrics")
    server = VictoriaMetricsServer.start(list(dataset.samples()), tmp_path_factory.mktemp("vm"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest) -> str:
    """The URL of each engine in turn: every test using it runs against both."""
    fixture = "prometheus" if request.param == "prometheus" else "victoria_metrics"
    server: PrometheusServer | VictoriaMetricsServer = request.getfixturevalue(fixture)
    return server.url
