"""Real servers loaded with the gateway dataset, started once per test session."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(params=ENGINES)
def engine_url(request: pytest.FixtureRequest) -> str:
    """The URL of each engine in turn: every test using it runs against both."""
    fixture = "prometheus" if request.param == "prometheus" else "victoria_metrics"
    server: PrometheusServer | VictoriaMetricsServer = request.getfixturevalue(fixture)
    return server.url


# The gateway's two modes, as its QA plan names its "test and production code paths".
GATEWAY_MODES: dict[str, dict[str, str]] = {
    "testing": {"APP_ENV": "testing", "TESTING": "true"},
    "production": {"APP_ENV": "production"},
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # Every test of an in-process exporter runs in both modes: the exporter has no test-mode
    # data path, so each must pass unchanged in either.
    if "start_exporter" in metafunc.fixturenames:
        metafunc.parametrize("gateway_mode", list(GATEWAY_MODES), indirect=True)


@pytest.fixture(autouse=True)
def gateway_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str | None:
    """The mode set in APP_ENV/TESTING for this test, or None where the test sets none."""
    mode: str | None = getattr(request, "param", None)
    if mode is not None:
        for variable in ("APP_ENV", "TESTING"):
            monkeypatch.delenv(variable, raising=False)
        for variable, value in GATEWAY_MODES[mode].items():
            monkeypatch.setenv(variable, value)
    return mode
