"""/health and ?explain=1 on the gateway dataset, on both engines.

Expected statuses follow from tests/integration/dataset.py. The production gateway at BUSY_AT:
1 request in 10 is a 5xx (10 %: degraded), 1 provider of 6 is unavailable, its breaker open
(degraded), 4 of 19 inference attempts fail (21 %: degraded), 2.5 USD went unbilled and one
payment was under its price (degraded), p95 is at least 5 s (degraded, for certain), and a
scanner's 404 on the self-test's old path is no self-test series. The legacy gateway still
runs the self-test generator: critical in production only.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect

from tests.integration import dataset
from tests.integration.conftest import GATEWAY_MODES, gateway_environment

pytestmark = pytest.mark.integration

LEGACY = f'job="{dataset.LEGACY_JOB}"'


def generator_series() -> int:
    """How many distinct series of the legacy gateway its self-test generator wrote into, or
    the older gauges state for its `test` provider: everything but a 4xx on its path."""

    def synthetic(name: str, labels: Any) -> bool:
        answered = name == "fastapi_requests_total" and not labels["status_code"].startswith("4")
        return (
            labels.get("provider") == "test"
            or labels.get("model") == "test-model"
            or (labels.get("path") == "/api/metrics/test" and answered)
        )

    return len(
        {
            (sample.name, tuple(sorted(sample.labels.items())))
            for sample in dataset.samples(variant=dataset.LEGACY, job=dataset.LEGACY_JOB)
            if synthetic(sample.name, sample.labels)
        }
    )


async def health_at(client: Any, at: int, **params: str) -> tuple[int, Any]:
    response = await client.get("/health", params={"time": str(at), **params})
    return response.status, json.loads(await response.text())


def statuses(document: Any) -> dict[str, str]:
    return {name: check["status"] for name, check in document["checks"].items()}


async def test_the_busy_production_gateway_is_degraded_in_both_modes(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    status, document = await health_at(client, dataset.BUSY_AT)
    assert status == 200
    assert statuses(document) == {
        "gateway_targets": "ok",
        "gateway_samples": "ok",
        "http_error_rate": "degraded",
        "providers_unavailable": "degraded",
        "provider_breakers_open": "degraded",
        "inference_error_rate": "degraded",
        "missed_credit_deductions": "degraded",
        "payment_mismatches": "degraded",
        "pool_utilization": "unknown",  # the gateway never writes its pools
        "redis_down": "ok",
        "event_loop_lag": "ok",
        "http_p95_latency": "degraded",
        "synthetic_series": "ok",
        "upstream": "ok",
        "snapshot_age": "ok",
        "test_mode": "ok",
    }
    assert document["status"] == "degraded"
    checks = document["checks"]
    # Who is behind each, from the same refresh.
    details = {name: check["detail"] for name, check in checks.items() if check["detail"]}
    assert details == {
        "providers_unavailable": "unavailable: groq",
        "provider_breakers_open": "open: groq",
        "inference_error_rate": "failing: groq 100 %, openrouter 25 %, openai 16.67 %",
        "missed_credit_deductions": "by reason: retry_exhausted 2.5 USD",
        "payment_mismatches": "by severity: under 1",
        "event_loop_lag": "replicas: gw-2 3.906 ms, gw-1 1.953 ms",
    }
    assert checks["provider_breakers_open"]["names"] == ["groq"]
    assert checks["provider_breakers_open"]["display"] == "1 of 6 (16.67 %)"
    assert checks["missed_credit_deductions"]["display"] == "2.5 USD"
    assert checks["pool_utilization"]["reason"] == (
        "database.pool_utilization is null: connection_pool_utilization_ratio has no series in"
        " the upstream over the last 1h (the gateway does not write it, or is down)"
    )
    assert checks["http_error_rate"]["value"] == pytest.approx(10.0, rel=1e-9)
    assert checks["providers_unavailable"]["display"] == "1 of 6 (16.67 %)"
    assert checks["http_p95_latency"]["display"] == "≥ 5000 ms"
    # A scanner's 404 on /api/metrics/test is a real request, not the self-test.
    assert (checks["synthetic_series"]["value"], checks["synthetic_series"]["reason"]) == (0, None)
    assert document["liveness"]["status"] == "ok"


@pytest.mark.parametrize("gateway_mode", list(GATEWAY_MODES))
async def test_the_self_test_generators_series_are_critical_in_production_only(
    start_exporter: Any, environments_url: str, gateway_mode: str
) -> None:
    client = await start_exporter(
        environments_url, selector=LEGACY, environment=gateway_environment(gateway_mode)
    )
    _, document = await health_at(client, dataset.BUSY_AT)
    in_production = gateway_mode == "production"
    synthetic = document["checks"]["synthetic_series"]
    assert synthetic["value"] == generator_series() == 7
    assert synthetic["status"] == ("critical" if in_production else "ok")
    assert document["status"] == ("critical" if in_production else "degraded")
    strict, _ = await health_at(client, dataset.BUSY_AT, strict="1")
    assert strict == (503 if in_production else 200)


async def test_a_quiet_gateway_has_no_error_rate_to_judge(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    _, document = await health_at(client, dataset.QUIET_AT)
    error_rate = document["checks"]["http_error_rate"]
    assert error_rate["status"] == "unknown"
    assert error_rate["reason"] == "http.error_rate is null: no requests in window (0/0)"
    assert document["checks"]["http_p95_latency"]["status"] == "unknown"
    assert document["checks"]["providers_unavailable"]["display"] == "1 of 3 (33.33 %)"
    assert document["status"] == "degraded"


@pytest.mark.parametrize(
    ("at", "status"),
    [
        (dataset.PARTIAL_AT, "degraded"),
        (dataset.DOWN_AT, "critical"),
        (dataset.GONE_AT, "critical"),
    ],
)
async def test_a_gateway_going_down_is_degraded_then_critical_however_quiet(
    start_exporter: Any, engine_url: str, at: int, status: str
) -> None:
    client = await start_exporter(engine_url)
    _, document = await health_at(client, at)
    assert document["liveness"]["status"] == status
    assert document["status"] != "ok"
    # Nothing is left to judge the traffic by, and that never reads as OK.
    assert document["checks"]["http_error_rate"]["status"] == "unknown"


async def test_before_any_data_the_gateway_is_down_and_no_count_claims_zero(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    _, document = await health_at(client, dataset.EMPTY_AT)
    assert document["status"] == "critical"
    samples = document["checks"]["gateway_samples"]
    assert (samples["status"], samples["display"]) == ("critical", "≥ 3600000 ms")
    synthetic = document["checks"]["synthetic_series"]
    assert synthetic["status"] == "unknown"
    assert synthetic["reason"].startswith("fastapi_requests_total has no series in the upstream")


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
        elif served is None or (served == 0 and not result):
            assert result == [], key
        else:
            assert float(result[0]["value"][1]) == pytest.approx(served, rel=1e-9), key
        # Which metrics it reads, and how many series each has: the same count pasted.
        counted = oracle.custom_query(explained["reads_promql"], params={"time": explained["time"]})
        series = {item["metric"]["__name__"]: int(item["value"][1]) for item in counted}
        assert {metric: series.get(metric) for metric in explained["reads"]} == explained["reads"]


async def test_the_legacy_gateways_pools_redis_and_event_loop_are_judged_and_named(
    start_exporter: Any, environments_url: str
) -> None:
    client = await start_exporter(environments_url, selector=LEGACY)
    _, document = await health_at(client, dataset.BUSY_AT)
    checks = document["checks"]
    judged = {
        name: (checks[name]["status"], checks[name]["display"], checks[name]["detail"])
        for name in ("pool_utilization", "redis_down", "event_loop_lag")
    }
    assert judged == {
        "pool_utilization": ("degraded", "93.75 %", "pools: read_replica 93.75 %, supabase 40 %"),
        "redis_down": ("degraded", "0", "unreachable from: gw-2"),
        "event_loop_lag": ("degraded", "1500 ms", "replicas: gw-2 1500 ms, gw-1 1.953 ms"),
    }


async def test_a_quiet_gateway_names_its_open_breaker_and_loses_no_money(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    _, document = await health_at(client, dataset.QUIET_AT)
    checks = document["checks"]
    breakers = checks["provider_breakers_open"]
    assert (breakers["display"], breakers["detail"]) == ("1 of 3 (33.33 %)", "open: groq")
    assert checks["missed_credit_deductions"]["status"] == "ok"
    assert checks["missed_credit_deductions"]["detail"] is None
    assert checks["inference_error_rate"]["status"] == "unknown"


async def test_check_promql_pasted_into_the_engine_gives_the_judged_value(
    start_exporter: Any, environments_url: str
) -> None:
    client = await start_exporter(environments_url, selector=LEGACY)
    _, document = await health_at(client, dataset.BUSY_AT)
    oracle = PrometheusConnect(url=environments_url, disable_ssl=True)
    synthetic = document["checks"]["synthetic_series"]
    (promql,) = synthetic["promql"]
    result = oracle.custom_query(promql, params={"time": dataset.BUSY_AT})
    assert float(result[0]["value"][1]) == synthetic["value"]
