"""A real Prometheus scraping a gateway that stops and comes back, under a running exporter.

The gateway is a small real target on loopback (tests/integration/gateway_target.py) scraped
every second; SIGSTOP freezes it, so its scrapes time out and Prometheus marks it down, as it
would a hung or dead gateway. The exporter must say so within one refresh of Prometheus
doing so, in /health, /summary, the page and `check`, and return to normal after.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.servers import (
    ExporterProcess,
    PrometheusServer,
    ScrapeTarget,
    require_binary,
    wait_for,
)

pytestmark = pytest.mark.integration

JOB = "gatewayz-api-production"
INTERVAL = 1.0
# One refresh after Prometheus changed its mind, plus the time the refresh itself takes on a
# busy machine.
WITHIN_ONE_REFRESH = INTERVAL + 1.5
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(url: str) -> Any:
    with _HTTP.open(url, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ScrapeTarget, str, str]]:
    """The gateway, a Prometheus scraping it and an exporter on it: (gateway, Prometheus URL,
    exporter URL), once Prometheus has scraped the gateway and the exporter sees it up."""
    require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("gateway-down")
    with ScrapeTarget.start("tests.integration.gateway_target", workdir / "gateway") as gateway:
        scrape = {JOB: [gateway.address]}
        with PrometheusServer.start([], workdir / "prometheus", scrape=scrape) as prometheus:
            # Prometheus applies its targets about 5 s after start.
            assert wait_for(lambda: prometheus_up(prometheus.url) == 1.0, 30), "never scraped"
            variables = {
                "EXPORTER_PROMETHEUS_URL": prometheus.url,
                "EXPORTER_SELECTOR": f'job="{JOB}"',
                "EXPORTER_REFRESH_INTERVAL": str(INTERVAL),
                "EXPORTER_WINDOW": "1m",
            }
            exporter = ExporterProcess.start(workdir / "exporter", variables)
            with exporter:
                assert wait_for(lambda: liveness(exporter.url) == "ok", 10), "never live"
                yield gateway, prometheus.url, exporter.url


def prometheus_up(url: str) -> float | None:
    query = urllib.parse.urlencode({"query": f'up{{job="{JOB}"}}'})
    result = get(f"{url}/api/v1/query?{query}")["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def liveness(exporter: str) -> str:
    return str(get(f"{exporter}/health")["liveness"]["status"])


def within(seconds: float, condition: Callable[[], bool]) -> float:
    """Seconds until `condition` held; fails when it did not within `seconds`."""
    started = time.monotonic()
    assert wait_for(condition, seconds), f"not within {seconds} s"
    return time.monotonic() - started


def check(exporter: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--url", exporter],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip


def test_a_stopped_gateway_is_critical_within_one_refresh_and_recovers(
    scraped: tuple[ScrapeTarget, str, str],
) -> None:
    gateway, prometheus, exporter = scraped
    health = get(f"{exporter}/health")
    assert health["liveness"]["status"] == "ok"
    assert health["checks"]["gateway_targets"]["display"] == "1 of 1 (100 %)"

    gateway.pause()
    try:
        within(15, lambda: prometheus_up(prometheus) == 0.0)
        within(WITHIN_ONE_REFRESH, lambda: get(f"{exporter}/health")["status"] == "critical")
        health = get(f"{exporter}/health")
        assert health["liveness"] == {
            "status": "critical",
            "reason": "gateway_targets 0 of 1 (0 %)",
            "checks": {"gateway_targets": "critical", "gateway_samples": "ok"},
        }
        summary = get(f"{exporter}/summary")
        assert summary["liveness"]["status"] == "critical"
        assert summary["metrics"]["gateway"]["targets_up"] == 0
        down = check(exporter)
        assert down.returncode == 2, down.stderr
        assert down.stdout.startswith(
            "Gateway status: CRITICAL (gateway down: gateway_targets 0 of 1 (0 %))\n"
        )
        with _HTTP.open(f"{exporter}/", timeout=10) as response:
            page = response.read().decode()
        assert "<h1>Gateway down" in page
        with _HTTP.open(f"{exporter}/metrics", timeout=10) as response:
            assert 'summary_liveness{status="critical"} 1.0' in response.read().decode()
    finally:
        gateway.resume()

    within(15, lambda: prometheus_up(prometheus) == 1.0)
    within(WITHIN_ONE_REFRESH, lambda: liveness(exporter) == "ok")
    back = check(exporter)
    assert back.returncode == 0, back.stdout + back.stderr
    assert back.stdout.startswith("Gateway status: OK\n")
