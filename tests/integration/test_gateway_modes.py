"""The gateway's two modes: the same numbers straight from Prometheus; only the guard differs.

Two exporter processes run side by side on the real Prometheus, one with APP_ENV=testing
TESTING=true and one with APP_ENV=production, and their documents are compared field by
field. They read the legacy gateway (EXPORTER_SELECTOR), which still runs the self-test
generator. A third, production with TESTING on, must refuse to start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.servers import ExporterProcess, PrometheusServer, ServerError
from tests.integration import dataset
from tests.integration.conftest import GATEWAY_MODES

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@pytest.fixture(scope="module")
def exporters(
    environments_prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ExporterProcess]]:
    """One exporter process per gateway mode, on the same Prometheus and environment."""
    started: dict[str, ExporterProcess] = {}
    try:
        for mode, variables in GATEWAY_MODES.items():
            started[mode] = ExporterProcess.start(
                tmp_path_factory.mktemp(f"exporter-{mode}"),
                {
                    "EXPORTER_PROMETHEUS_URL": environments_prometheus.url,
                    "EXPORTER_SELECTOR": f'job="{dataset.LEGACY_JOB}"',
                    **variables,
                },
            )
        yield started
    finally:
        for process in started.values():
            process.stop()


def get(url: str) -> tuple[int, Any]:
    try:
        with _HTTP.open(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def at_busy(exporter: ExporterProcess, path: str) -> Any:
    status, document = get(f"{exporter.url}{path}?time={dataset.BUSY_AT}")
    assert status == 200, document
    return document


def test_both_modes_serve_identical_summaries_field_by_field(
    exporters: dict[str, ExporterProcess],
) -> None:
    testing = at_busy(exporters["testing"], "/summary")
    production = at_busy(exporters["production"], "/summary")
    assert testing["environment"] == {"app_env": "testing", "testing": True}
    assert production["environment"] == {"app_env": "production", "testing": False}
    assert testing["metrics"]["http"]["total_requests"] == 200  # real data, not an empty pair
    for domain, fields in production["metrics"].items():
        assert testing["metrics"][domain].keys() == fields.keys(), domain
        for name, value in fields.items():
            assert testing["metrics"][domain][name] == value, f"{domain}.{name}"
    # Everything else but the environment and the moment each was asked is the same too.
    variable = {"environment", "age_seconds"}
    assert {k: v for k, v in testing.items() if k not in variable} == {
        k: v for k, v in production.items() if k not in variable
    }


def test_health_differs_only_where_production_is_judged_differently(
    exporters: dict[str, ExporterProcess],
) -> None:
    testing = at_busy(exporters["testing"], "/health")
    production = at_busy(exporters["production"], "/health")
    assert (testing["status"], production["status"]) == ("degraded", "critical")
    differing = {
        name for name, check in production["checks"].items() if check != testing["checks"][name]
    }
    assert differing == {"synthetic_series", "test_mode"}
    # On gw-1: its requests counter (a 200 on the test path), its inference counter and that
    # counter's _created series, and on both replicas the test provider's two older gauges.
    values = {mode["checks"]["synthetic_series"]["value"] for mode in (testing, production)}
    assert values == {7.0}


def test_the_gauges_say_which_mode_the_exporter_runs_in(
    exporters: dict[str, ExporterProcess],
) -> None:
    expected = {
        "testing": 'app_env="testing",testing="true"',
        "production": 'app_env="production",testing="false"',
    }
    for mode, labels in expected.items():
        with _HTTP.open(f"{exporters[mode].url}/metrics", timeout=30) as response:
            text = response.read().decode()
        assert f"summary_environment_info{{{labels}}} 1.0\n" in text


def check_command(exporter: ExporterProcess) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", "check", "--url", exporter.url,
         "--time", "2026-01-01T00:30:00Z"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_check_reads_degraded_in_testing_and_critical_in_production(
    exporters: dict[str, ExporterProcess],
) -> None:
    testing = check_command(exporters["testing"])
    production = check_command(exporters["production"])
    assert (testing.returncode, production.returncode) == (1, 2)
    assert testing.stdout.startswith("Gateway status: DEGRADED\n")
    assert production.stdout.startswith("Gateway status: CRITICAL\n")
    assert "  http_error_rate           degraded  10 %" in testing.stdout
    assert "  error_rate               10 %" in testing.stdout
    # The providers, worst first, under the checks.
    assert "\nproviders.by_provider\n  PROVIDER    REQUESTS" in testing.stdout
    assert "  groq        40        50 %        10000 ms              open" in testing.stdout
    # Kept for people: what on-call sees for this degraded gateway.
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "check-degraded.txt").write_text(testing.stdout)


def test_production_with_test_mode_on_refuses_to_start_naming_testing(
    prometheus: PrometheusServer, tmp_path: Path
) -> None:
    variables = {"EXPORTER_PROMETHEUS_URL": prometheus.url, "APP_ENV": "production"}
    with pytest.raises(ServerError, match="exited with status 2") as refused:
        ExporterProcess.start(tmp_path, variables | {"TESTING": "TRUE"})
    assert "refusing to start: TESTING='TRUE'" in str(refused.value)
