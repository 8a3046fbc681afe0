"""The summary served for the dataset equals, field by field, what the engine itself says.

Expected values are worked out by hand from tests/integration/dataset.py (per 15 s step:
10 requests of which 1 is a 5xx, ...); the independent oracle, prometheus-api-client, asks
the same PromQL directly and must give the same numbers.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect

from exporter.catalog import Catalog, Kind
from tests.integration import dataset

pytestmark = pytest.mark.integration

BUSY: dict[str, dict[str, Any]] = {
    "http": {
        "total_requests": 200,  # (6 + 1 + 1 + 2) per step x 20 steps; the test path excluded
        "request_rate_per_minute": 40.0,
        "error_rate": 10.0,  # 1 of 10 per step is a 500
        "avg_latency_ms": 250.0,  # 2.5 s over 10 observations per step
        "p95_latency_ms": 750.0,  # rank 9.5 of 10, between le=0.5 (9) and le=1 (10)
        "in_progress": 4,
    },
    "models": {
        "total_inference_requests": 260,  # 13 per step
        "total_models": 4,
        "top_models": ["gpt-4o", "claude-3-5-sonnet", "llama-3-70b"],
        "avg_requests_per_model": 65.0,
        "tokens_used_total": 54000,  # 2700 per step
        "credits_used_total": 15.0,  # 0.75 per step
        "avg_inference_latency_ms": 10.0 / 13 * 1000,  # 10 s over 13 observations per step
    },
    "providers": {
        "total_providers": 4,
        "healthy_providers": 2,  # openai 90, openrouter 87.5
        "degraded_providers": 1,  # anthropic 75
        "unavailable_providers": 1,  # groq 0 (down)
        "avg_health_score": (90 + 75 + 0 + 87.5) / 4,
        "avg_error_rate": 100 * (0.1 + 0.25 + 0.5 + 0.125) / 4,
        "avg_response_time_ms": 700.0,  # 7 s over 10 observations per step
    },
    "database": {
        "total_queries": 120,
        "avg_query_latency_ms": 0.125 / 6 * 1000,
        "cache_hit_rate": 75.0,  # 15 hits, 5 misses per step
    },
    "business": {
        "active_api_keys": 42,  # reported by two replicas, counted once
        "active_subscriptions": 18,
        "active_trials": 6,
        "total_tokens_used": 54000,
        "total_credits_used": 15.0,
    },
}

QUIET: dict[str, dict[str, Any]] = {
    "http": {
        "total_requests": 0,
        "request_rate_per_minute": 0.0,
        "error_rate": None,
        "avg_latency_ms": None,
        "p95_latency_ms": None,
        "in_progress": 0,
    },
    "models": {
        "total_inference_requests": 0,
        "total_models": 0,
        "top_models": [],
        "avg_requests_per_model": None,
        "tokens_used_total": 0,
        "credits_used_total": 0.0,
        "avg_inference_latency_ms": None,
    },
    "providers": BUSY["providers"] | {"avg_response_time_ms": None},
    "database": {"total_queries": 0, "avg_query_latency_ms": None, "cache_hit_rate": None},
    "business": BUSY["business"] | {"total_tokens_used": 0, "total_credits_used": 0.0},
}

QUIET_NULLS = {
    "http.error_rate": "no requests in window (0/0)",
    "http.avg_latency_ms": "no requests in window (0/0)",
    "http.p95_latency_ms": "no requests in window (0/0)",
    "models.avg_requests_per_model": "no model requests in window (0/0)",
    "models.avg_inference_latency_ms": "no inference requests in window (0/0)",
    "providers.avg_response_time_ms": (
        "no series for provider_response_time_seconds, or no observations in window"
    ),
    "database.avg_query_latency_ms": "no database queries in window (0/0)",
    "database.cache_hit_rate": "no cache lookups in window (0/0)",
}

EMPTY_NULLS = {
    "http.request_rate_per_minute": "no series for fastapi_requests_total",
    "http.in_progress": "no series for fastapi_requests_in_progress",
    "providers.avg_health_score": "no series for provider_availability with provider_error_rate",
    "providers.avg_error_rate": "no series for provider_error_rate",
    "business.active_api_keys": 'no series for active_api_keys{status="active"}',
    "business.active_subscriptions": "no series for subscription_count",
    "business.active_trials": 'no series for trial_active{status="active"}',
}


def assert_same_metrics(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal field by field: counts and lists exactly, other numbers to 1e-9 relative."""
    assert actual.keys() == expected.keys()
    for domain, fields in expected.items():
        assert actual[domain].keys() == fields.keys(), domain
        for name, value in fields.items():
            got = actual[domain][name]
            where = f"{domain}.{name}"
            if isinstance(value, float):
                assert isinstance(got, float | int), where
                assert not isinstance(got, bool), where
                assert got == pytest.approx(value, rel=1e-9), where
            else:
                assert got == value, where
                assert type(got) is type(value), where


async def summary_at(client: Any, at: int, window: str = "5m", path: str = "/summary") -> Any:
    response = await client.get(path, params={"time": str(at), "window": window})
    assert response.status == 200, await response.text()
    return json.loads(await response.text())


async def test_busy_window_gives_every_field_exactly(start_exporter: Any, engine_url: str) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, dataset.BUSY_AT)
    assert_same_metrics(document["metrics"], BUSY)
    assert document["nulls"] == {}
    assert document["timestamp"] == "2026-01-01T00:30:00Z"
    assert document["window"] == "5m"
    assert document["stale"] is False


async def test_quiet_window_gives_zero_counts_and_null_ratios_with_reasons(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, dataset.QUIET_AT)
    assert_same_metrics(document["metrics"], QUIET)
    assert document["nulls"] == QUIET_NULLS


async def test_instant_before_any_data_gives_null_gauges_with_reasons(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, dataset.EMPTY_AT)
    counts = {key for key, value in _flatten(document["metrics"]).items() if value in (0, [])}
    assert "http.total_requests" in counts
    assert "models.top_models" in counts
    for key, reason in EMPTY_NULLS.items():
        assert document["nulls"][key] == reason
    assert all(_flatten(document["metrics"])[key] is None for key in document["nulls"])


async def test_document_is_strict_json_without_nan(start_exporter: Any, engine_url: str) -> None:
    client = await start_exporter(engine_url)
    response = await client.get("/summary", params={"time": str(dataset.QUIET_AT)})
    text = await response.text()

    def reject(constant: str) -> None:
        raise AssertionError(f"non-standard JSON constant {constant}")

    json.loads(text, parse_constant=reject)


async def test_gateway_path_and_domain_path_serve_the_same_numbers(
    start_exporter: Any, prometheus: Any
) -> None:
    client = await start_exporter(prometheus.url)
    full = await summary_at(client, dataset.BUSY_AT)
    legacy = await summary_at(client, dataset.BUSY_AT, path="/prometheus/metrics/summary")
    one = await summary_at(client, dataset.BUSY_AT, path="/summary/providers")
    assert legacy["metrics"] == full["metrics"]
    assert one["metrics"] == {"providers": full["metrics"]["providers"]}


async def test_oracle_gives_the_same_numbers_for_the_same_promql(
    start_exporter: Any, engine_url: str, catalog: Catalog
) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, dataset.BUSY_AT)
    oracle = PrometheusConnect(url=engine_url, disable_ssl=True)
    for domain, name, spec in catalog.fields():
        result = oracle.custom_query(spec.render("5m"), params={"time": dataset.BUSY_AT})
        served = document["metrics"][domain][name]
        if spec.kind is Kind.LABELS:
            ranked = sorted(result, key=lambda item: -float(item["value"][1]))
            assert served == [item["metric"][spec.label] for item in ranked], name
        else:
            assert len(result) == 1, name
            value = float(result[0]["value"][1])
            assert math.isfinite(value)
            assert served == pytest.approx(value, rel=1e-9), f"{domain}.{name}"


async def test_engines_give_the_same_document(
    start_exporter: Any, prometheus: Any, victoria_metrics: Any
) -> None:
    on_prometheus = await start_exporter(prometheus.url)
    on_victoria = await start_exporter(victoria_metrics.url)
    for at in (dataset.BUSY_AT, dataset.QUIET_AT, dataset.EMPTY_AT):
        first = await summary_at(on_prometheus, at)
        second = await summary_at(on_victoria, at)
        assert first["nulls"] == second["nulls"], at
        assert_same_metrics(second["metrics"], first["metrics"])


def _flatten(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{d}.{f}": v for d, fields in metrics.items() for f, v in fields.items()}
