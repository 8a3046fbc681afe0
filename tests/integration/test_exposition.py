"""`/metrics` of a real exporter process on a real Prometheus, as promtool and scrapers read it."""

from __future__ import annotations

import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.servers import ExporterProcess, PrometheusServer, require_binary, wait_for

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


def sample(text: str, series: str) -> float | None:
    """The value of one series in an exposition, or None. The data ends about when the
    exporter first refreshes, so a count over the window depends on how long it took to start:
    a value, not a particular one."""
    found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


def scrape(exporter: ExporterProcess, accept: str | None = None) -> str:
    request = urllib.request.Request(f"{exporter.url}/metrics")
    if accept is not None:
        request.add_header("Accept", accept)
    with _HTTP.open(request, timeout=30) as response:
        text: str = response.read().decode()
        return text


def test_promtool_check_metrics_passes_on_the_exposition(exporter: ExporterProcess) -> None:
    text = scrape(exporter)
    assert (sample(text, 'summary_models_requests{model="gpt-4o"}') or 0) > 0  # a full one
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
    assert (sample(text, "summary_models_tokens_used") or 0) > 0
    assert (sample(text, "summary_models_credits_used") or 0) > 0
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


def test_the_tables_are_gauge_families_labelled_by_provider_and_model(
    exporter: ExporterProcess,
) -> None:
    text = scrape(exporter)
    # groq's breaker is open: its state a label, and its health score 0.
    assert (
        sample(text, 'summary_providers_by_provider_breaker{breaker="open",provider="groq"}') == 1
    )
    assert sample(text, 'summary_providers_by_provider_health_score{provider="groq"}') == 0
    assert sample(text, 'summary_providers_by_provider_error_ratio{provider="groq"}') == 1
    assert sample(text, "summary_providers_open_circuit_breakers") == 1
    assert (sample(text, 'summary_models_by_model_requests{model="gpt-4o"}') or 0) > 0
    assert sample(text, "summary_database_redis_up") == 1
