"""`summary-exporter doctor` against a real Prometheus holding each variant of the gateway.

What production writes leaves six fields without a value (exit 1): the business gauges, the
connection pools and the slow calls, which the gateway defines and never writes; with the
metrics of similar names it does write; the legacy gateway fills every field (exit 0). The
doctor's questions are bounded: two queries, each over the lookback and named metrics only.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from harness.servers import PrometheusServer
from tests.exporter_client import run_command
from tests.integration import dataset

pytestmark = pytest.mark.integration

AT = "2026-01-01T00:30:00Z"


def doctor(prometheus: PrometheusServer, *args: str, selector: str = "") -> Any:
    return run_command(
        "doctor", "--time", AT, *args,
        env={"EXPORTER_PROMETHEUS_URL": prometheus.url, "EXPORTER_SELECTOR": selector},
    )  # fmt: skip


def queries_of(prometheus: PrometheusServer, run: Any) -> list[str]:
    before = _logged(prometheus)
    result: subprocess.CompletedProcess[str] = run()
    assert result.returncode in (0, 1), result.stderr
    return _logged(prometheus)[len(before) :]


def _logged(prometheus: PrometheusServer) -> list[str]:
    return [entry["params"]["query"] for entry in prometheus.logged()]


def test_what_production_writes_leaves_the_never_written_fields_empty_with_similar_metrics(
    prometheus: PrometheusServer,
) -> None:
    result = doctor(prometheus)
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == (
        f"Metrics the catalog reads, in {prometheus.url} (no selector), with series in the 1h"
        " before 2026-01-01T00:30:00Z:"
    )
    rows = {tuple(line.split()[:3]) for line in lines if line.startswith("  ")}
    # Replicas and label sets, counted by hand from the dataset.
    assert ("http.total_requests", "fastapi_requests_total", "6") in rows
    assert ("gateway.targets_up", "up", "2") in rows
    assert ("business.active_api_keys", "active_api_keys", "none") in rows
    cache = next(line for line in lines if line.split()[:1] == ["cache_hits_total"]).split()
    assert cache[:3] == ["cache_hits_total", "none", "similar:"]
    assert cache[3:] == [
        "catalog_cache_hits_total,",
        "gatewayz_pricing_cache_hits_total,",
        "catalog_cache_misses_total",
    ]
    slow = next(line for line in lines if line.split()[:1] == ["providers.slow_requests"])
    assert slow.split()[:4] == [
        "providers.slow_requests",
        "provider_slow_requests_total",
        "none",
        "similar:",
    ]
    assert lines[-2] == (
        "43 of 49 fields can have a value; 6 cannot: providers.slow_requests,"
        " database.pool_utilization, database.pool_errors, business.active_api_keys,"
        " business.active_subscriptions, business.active_trials"
    )
    assert lines[-1] == (
        "Recording rules (window 5m, EXPORTER_RECORDED_RULES=auto): no rule answered within"
        " 60 s (`summary-exporter rules` prints them), PromQL answers instead"
    )


def test_the_legacy_gateway_fills_every_field(environments_prometheus: PrometheusServer) -> None:
    result = doctor(environments_prometheus, "--json", selector=f'job="{dataset.LEGACY_JOB}"')
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["cannot_have_value"] == []
    assert document["missing"] == {}
    assert document["fields"]["providers.avg_health_score"]["metrics"] == {
        "provider_availability": 10,  # 5 providers (test too) on 2 replicas
        "circuit_breaker_current_state": 8,
        "model_inference_requests_total": 10,
        "provider_error_rate": 10,
    }


def test_under_a_selector_only_that_environment_is_asked(
    environments_prometheus: PrometheusServer,
) -> None:
    result = doctor(environments_prometheus, "--json", selector=f'job="{dataset.STAGING_JOB}"')
    assert result.returncode == 1
    document = json.loads(result.stdout)
    # The legacy gateway of the same Prometheus writes them; staging does not.
    assert document["cannot_have_value"] == [
        "providers.slow_requests", "database.pool_utilization", "database.pool_errors",
        "business.active_api_keys", "business.active_subscriptions", "business.active_trials",
    ]  # fmt: skip
    assert document["fields"]["gateway.targets_up"]["metrics"] == {
        "up": 2,
        "fastapi_requests_total": 6,
    }


def test_the_doctors_questions_are_bounded(prometheus: PrometheusServer) -> None:
    asked = queries_of(prometheus, lambda: doctor(prometheus))
    assert len(asked) == 3
    # The recording rules' samples within EXPORTER_RECORDED_MAX_AGE, by fingerprint.
    recorded = [query for query in asked if query.startswith('{__name__=~"summary:.+"')]
    assert len(recorded) == 1
    assert recorded[0].endswith("}[1m]")
    for query in (query for query in asked if query not in recorded):
        assert query.startswith('count by (__name__) (last_over_time({__name__=~"')
        assert query.endswith("}[1h]))")
        assert '__name__=~".+"' not in query
