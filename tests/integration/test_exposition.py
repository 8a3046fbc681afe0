"""`/metrics` of a real exporter process on a real Prometheus, as promtool and scrapers read it."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.servers import ExporterProcess, PrometheusServer, require_binary, wait_for

pytestmark = pytest.mark.integration

_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


@pytest.fixture
def exporter(live_prometheus: PrometheusServer, tmp_path: Path) -> Iterator[ExporterProcess]:
    """An exporter whose first refresh has reached Prometheus, with traffic to report."""
    process = ExporterProcess.start(
        tmp_path / "exporter",
        {"EXPORTER_PROMETHEUS_URL": live_prometheus.url, "APP_ENV": "staging"},
    )
    try:
        assert wait_for(lambda: "summary_exporter_up 1.0\n" in scrape(process), timeout=20)
        yield process
    finally:
        process.stop()


def scrape(exporter: ExporterProcess, accept: str | None = None) -> str:
    request = urllib.request.Request(f"{exporter.url}/metrics")
    if accept is not None:
        request.add_header("Accept", accept)
    with _HTTP.open(request, timeout=30) as response:
        text: str = response.read().decode()
        return text


def test_promtool_check_metrics_passes_on_the_exposition(exporter: ExporterProcess) -> None:
    text = scrape(exporter)
    assert 'summary_models_requests{model="gpt-4o"} 120.0\n' in text  # a full exposition
    checked = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (checked.returncode, checked.stdout.strip(), checked.stderr.strip()) == (0, "", "")


def test_no_gauge_ends_in_total_and_the_renamed_ones_carry_the_values(
    exporter: ExporterProcess,
) -> None:
    text = scrape(exporter)
    assert "summary_models_tokens_used 60000.0\n" in text
    assert "summary_models_credits_used 20.0\n" in text
    assert "summary_models_tokens_used_total" not in text
    assert "summary_models_credits_used_total" not in text


def test_openmetrics_has_info_metrics_and_no_created_series(exporter: ExporterProcess) -> None:
    text = scrape(exporter, OPENMETRICS)
    assert "_created" not in text
    assert "# TYPE summary_exporter_build info\n" in text
    assert "# TYPE summary_environment info\n" in text
    assert 'summary_environment_info{app_env="staging",testing="false"} 1.0\n' in text
    assert "# TYPE summary_exporter_query_errors counter\n" in text
    assert text.endswith("# EOF\n")
