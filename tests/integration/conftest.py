"""Real servers loaded with the gateway dataset, started once per test session.

`prometheus` and `victoria_metrics` hold the production gateway alone; the `environments_*`
ones hold production, staging and the legacy gateway under their own jobs, and a job that is
not the gateway (dataset.environments()).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from exporter.environment import Environment, read_environment
from harness.hostile_upstream import HostileUpstreamProcess
from harness.servers import PrometheusServer, VictoriaMetricsServer, require_binary
from tests.integration import dataset
from tests.integration.demo_history import History, history

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


@pytest.fixture
def live_prometheus(tmp_path: Path) -> Iterator[PrometheusServer]:
    """A Prometheus of its own (a test may kill it) whose busy half-hour ends now, so that
    background refreshes, always at the current time, see traffic."""
    require_binary("prometheus")
    now = math.floor(time.time() / dataset.STEP) * dataset.STEP
    samples = list(dataset.samples(start=now - 1800, until=now))
    server = PrometheusServer.start(samples, tmp_path / "live-prometheus")
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


@pytest.fixture(scope="session")
def environments_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PrometheusServer]:
    require_binary("prometheus")
    require_binary("promtool")
    workdir = tmp_path_factory.mktemp("prometheus-environments")
    with PrometheusServer.start(list(dataset.environments()), workdir) as server:
        yield server


@pytest.fixture(scope="session")
def environments_victoria_metrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VictoriaMetricsServer]:
    require_binary("victoria-metrics")
    workdir = tmp_path_factory.mktemp("vm-environments")
    with VictoriaMetricsServer.start(list(dataset.environments()), workdir) as server:
        yield server


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[HostileUpstreamProcess]:
    """The hostile upstream (harness/hostile_upstream.py), answering well until told otherwise."""
    with HostileUpstreamProcess.start(tmp_path / "upstream") as process:
        yield process


@pytest.fixture(scope="session")
def demo_history() -> History:
    """Fifteen minutes of the demo gateway from dataset.START, with one incident (demo_history)."""
    return history(dataset.START, 900)


@pytest.fixture(scope="session")
def demo_prometheus(
    demo_history: History, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrometheusServer]:
    workdir = tmp_path_factory.mktemp("prometheus-demo")
    with PrometheusServer.start(demo_history.samples, workdir) as server:
        yield server


@pytest.fixture(scope="session")
def demo_victoria_metrics(
    demo_history: History, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[VictoriaMetricsServer]:
    workdir = tmp_path_factory.mktemp("vm-demo")
    with VictoriaMetricsServer.start(demo_history.samples, workdir) as server:
        yield server


@pytest.fixture(params=ENGINES)
def demo_engine_url(request: pytest.FixtureRequest) -> str:
    """Each engine holding the demo gateway's history, in turn."""
    fixture = f"demo_{request.param.replace('-', '_')}"
    server: PrometheusServer | VictoriaMetricsServer = request.getfixturevalue(fixture)
    return server.url


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest) -> str:
    """The URL of each engine in turn: every test using it runs against both."""
    fixture = "prometheus" if request.param == "prometheus" else "victoria_metrics"
    server: PrometheusServer | VictoriaMetricsServer = request.getfixturevalue(fixture)
    return server.url


@pytest.fixture(params=ENGINES)
def environments_url(request: pytest.FixtureRequest) -> str:
    """Each engine holding several environments of the gateway, in turn."""
    fixture = f"environments_{request.param.replace('-', '_')}"
    server: PrometheusServer | VictoriaMetricsServer = request.getfixturevalue(fixture)
    return server.url


# The gateway's two modes, as its QA plan names its "test and production code paths". The
# exporter has no test-mode data path, so only tests whose outcome shows the mode run in both
# (test_gateway_modes.py compares the two side by side); the others run with neither set.
GATEWAY_MODES: dict[str, dict[str, str]] = {
    "testing": {"APP_ENV": "testing", "TESTING": "true"},
    "production": {"APP_ENV": "production"},
}


def gateway_environment(mode: str) -> Environment:
    """The environment an exporter reads in this gateway mode."""
    return read_environment(GATEWAY_MODES[mode])
