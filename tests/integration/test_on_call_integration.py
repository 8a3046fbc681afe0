"""/health and ?explain=1 on the gateway dataset, on both engines.

Expected statuses follow from tests/integration/dataset.py: at BUSY_AT 1 request in 10 is a
5xx (10 %: degraded), 1 provider of 4 is unavailable (25 %: degraded), p95 is 750 ms (ok),
and the gateway's self-test series are present (critical in production only).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect

from tests.integration import dataset
from tests.integration.conftest import GATEWAY_MODES, gateway_environment

pytestmark = pytest.mark.integration

SELF_TEST = (("provider", "test"), ("model", "test-model"), ("path", "/api/metrics/test"))


def self_test_series() -> int:
    """How many distinct series of the dataset carry a self-test label."""
    return len(
        {
            (sample.name, tuple(sorted(sample.labels.items())))
            for sample in dataset.samples()
            if any(sample.labels.get(label) == value for label, value in SELF_TEST)
        }
    )


async def health_at(client: Any, at: int, **params: str) -> tuple[int, Any]:
    response = await client.get("/health", params={"time": str(at), **params})
    return response.status, json.loads(await response.text())


def statuses(document: Any) -> dict[str, str]:
    return {name: check["status"] for name, check in document["checks"].items()}


async def test_busy_gateway_in_production_is_degraded_and_critical_for_its_self_test_series(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url, environment=gateway_environment("production"))
    status, document = await health_at(client, dataset.BUSY_AT)
    assert status == 200
    assert statuses(document) == {
        "http_error_rate": "degraded",
        "providers_unavailable": "degraded",
        "http_p95_latency": "ok",
        "synthetic_series": "critical",
        "upstream": "ok",
        "snapshot_age": "ok",
        "test_mode": "ok",
    }
    assert document["status"] == "critical"
    checks = document["checks"]
    assert checks["http_error_rate"]["value"] == pytest.approx(10.0, rel=1e-9)
    assert checks["providers_unavailable"]["display"] == "1 of 4 (25 %)"
    assert checks["http_p95_latency"]["value"] == pytest.approx(750.0, rel=1e-9)
    assert checks["synthetic_series"]["value"] == self_test_series() == 20


@pytest.mark.parametrize("gateway_mode", list(GATEWAY_MODES))
async def test_strict_health_is_503_for_self_test_series_in_production_only(
    start_exporter: Any, prometheus: Any, gateway_mode: str
) -> None:
    client = await start_exporter(prometheus.url, environment=gateway_environment(gateway_mode))
    status, _ = await health_at(client, dataset.BUSY_AT, strict="1")
    assert status == (503 if gateway_mode == "production" else 200)


async def test_a_quiet_gateway_has_no_error_rate_to_judge(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    _, document = await health_at(client, dataset.QUIET_AT)
    error_rate = document["checks"]["http_error_rate"]
    assert error_rate["status"] == "unknown"
    assert error_rate["reason"] == "http.error_rate is null: no requests in window (0/0)"
    assert document["checks"]["http_p95_latency"]["status"] == "unknown"
    assert document["checks"]["providers_unavailable"]["status"] == "degraded"


async def test_before_any_data_nothing_is_judged_and_no_self_test_series_are_seen(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    _, document = await health_at(client, dataset.EMPTY_AT)
    assert document["status"] == "ok"
    assert document["checks"]["providers_unavailable"]["reason"] == (
        "providers.total_providers is 0 (0 of 0)"
    )
    synthetic = document["checks"]["synthetic_series"]
    assert (synthetic["status"], synthetic["value"]) == ("ok", 0.0)


async def test_explained_promql_pasted_into_the_engine_gives_the_served_value(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    response = await client.get("/summary", params={"time": str(dataset.BUSY_AT), "explain": "1"})
    document = json.loads(await response.text())
    oracle = PrometheusConnect(url=engine_url, disable_ssl=True)
    for key, explained in document["explain"].items():
        domain, name = key.split(".")
        served = document["metrics"][domain][name]
        assert explained["time"] == "2026-01-01T00:30:00Z"
        result = oracle.custom_query(explained["promql"], params={"time": explained["time"]})
        if isinstance(served, list):
            assert len(result) == len(served), key
        else:
            assert float(result[0]["value"][1]) == pytest.approx(served, rel=1e-9), key


async def test_check_promql_pasted_into_the_engine_gives_the_judged_value(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    _, document = await health_at(client, dataset.BUSY_AT)
    oracle = PrometheusConnect(url=engine_url, disable_ssl=True)
    synthetic = document["checks"]["synthetic_series"]
    (promql,) = synthetic["promql"]
    result = oracle.custom_query(promql, params={"time": dataset.BUSY_AT})
    assert float(result[0]["value"][1]) == synthetic["value"]
