"""The summary served for the gateway dataset equals, field by field, a count by hand and what
the engine itself says.

Expected values are worked out by hand from tests/integration/dataset.py (per 15 s sample:
10 requests of which 1 is a 5xx, ...; a 5 m window holds 20 samples); the independent oracle,
prometheus-api-client, asks the same PromQL directly and must give the same numbers.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from prometheus_api_client import PrometheusConnect

from exporter.catalog import Catalog, FieldSpec, Kind
from tests.integration import dataset

pytestmark = pytest.mark.integration

# The event loop lags 1/512 s on gw-1 and 1/256 s on gw-2: the highest is 3.90625 ms.
_UP = {
    "targets_up": 2, "targets_total": 2, "newest_sample_age_ms": 0.0, "event_loop_lag_ms": 3.90625,
}  # fmt: skip


def provider(
    name: str,
    requests: int,
    error_rate: float | None,
    response_ms: float | None,
    breaker: str,
    score: float,
    status: str,
) -> dict[str, Any]:
    return {
        "provider": name, "requests": requests, "error_rate": error_rate,
        "avg_response_time_ms": response_ms, "breaker": breaker, "health_score": score,
        "status": status,
    }  # fmt: skip


def model(
    name: str, requests: int, error_rate: float, tokens: int, credits: float, latency: float | None
) -> dict[str, Any]:
    return {
        "model": name, "requests": requests, "error_rate": error_rate, "tokens": tokens,
        "credits": credits, "avg_latency_ms": latency,
    }  # fmt: skip


# Per 5m window, 20 samples: attempts per sample x 20; error rate, failed of all attempts;
# provider calls' mean duration; the breaker from its series (none: closed); the health score.
# Worst health first, ties by name.
BY_PROVIDER = [
    provider("groq", 40, 100.0, 10_000.0, "open", 0.0, "unavailable"),
    provider("openrouter", 80, 25.0, 1250.0, "closed", 75.0, "degraded"),  # (3 x 1.5 + 0.5) / 4
    # 13 s over 6 calls: 5 of 2.4 s and a failed one of 1 s.
    provider("openai", 120, 100 / 6, 13 / 6 * 1000, "closed", 500 / 6, "healthy"),
    provider("anthropic", 100, 0.0, 1600.0, "closed", 100.0, "healthy"),
    provider("fireworks", 0, None, None, "closed", 100.0, "healthy"),  # a breaker, no attempts
    provider("together", 40, 0.0, 750.0, "half_open", 100.0, "healthy"),
]  # fmt: skip
# Most requests first, ties by name (llama-3-70b before llama-3-8b); groq's model has neither
# tokens, credits nor durations (every attempt failed).
BY_MODEL = [
    model("gpt-4o", 120, 100 / 6, 30_000, 10.0, 2000.0),
    model("claude-3-5-sonnet", 100, 0.0, 24_000, 5.0, 1500.0),
    model("mistral-large", 80, 25.0, 6000, 5.0, 3000.0),
    model("llama-3-70b", 40, 100.0, 0, 0.0, None),
    model("llama-3-8b", 40, 0.0, 0, 0.0, 1750.0),
]
CELL_NULLS = {
    "models.by_model[llama-3-70b].avg_latency_ms": "no inference durations in the window (0/0)",
    "providers.by_provider[fireworks].error_rate": "no inference attempts in the window (0/0)",
    "providers.by_provider[fireworks].avg_response_time_ms": (
        "no provider calls in the window (0/0)"
    ),
}

# What production writes, busy: the older provider gauges and the business gauges absent.
BUSY: dict[str, dict[str, Any]] = {
    "gateway": _UP,
    "http": {
        "total_requests": 200,  # 10 per sample x 20, a scanner's 404 on /api/metrics/test too
        "request_rate_per_minute": 40.0,
        "error_rate": 10.0,  # 1 of 10 per sample is a 500
        "avg_latency_ms": 77.22 / 9 * 1000,  # 77.22 s over 9 observations per sample
        "p95_latency_ms": 5000.0,  # rank 8.55 of 9 past le=5 (6): the last finite bound
        "in_progress": 4,  # 3 on gw-1, 1 on gw-2
        # 1 per sample by the IP tier, and 3 on a velocity-mode series born in the window.
        "rate_limited_requests": 23,
    },
    "models": {
        "total_inference_requests": 380,  # 19 attempts per sample, errors included
        "total_models": 5,
        "top_models": ["gpt-4o", "claude-3-5-sonnet", "mistral-large"],  # 120, 100, 80
        "avg_requests_per_model": 76.0,
        "tokens_used_total": 60000,  # 3000 per sample
        "credits_used_total": 20.0,  # 1.0 per sample
        "avg_inference_latency_ms": 2000.0,  # 30 s over 15 successful attempts per sample
        "inference_error_rate": 400 / 19,  # 4 of 19 attempts per sample failed
        "ttfc_p95_ms": 2750.0,  # rank 4.75 of 5 between le=2 (4) and le=3 (5)
        "stream_chunks_dropped": 22,  # 1 per sample, and 2 on a series born in the window
        "by_model": BY_MODEL,
    },
    "providers": {
        # openai 100 x 5/6 = 83.3, anthropic 100, groq 0 (breaker open), openrouter 75,
        # together 100 (half-open counts as available), fireworks 100 (no attempts).
        "total_providers": 6,
        "healthy_providers": 4,
        "degraded_providers": 1,
        "unavailable_providers": 1,
        "avg_health_score": (500 / 6 + 100 + 0 + 75 + 100 + 100) / 6,
        # Over the five providers with attempts: 1/6, 0, 1, 1/4 and 0.
        "avg_error_rate": 100 * (1 / 6 + 0 + 1 + 0.25 + 0) / 5,
        "avg_response_time_ms": 2500.0,  # 47.5 s over 19 provider calls per sample
        "open_circuit_breakers": 1,  # groq
        "rejected_requests": 41,  # groq 2 per sample, together 1 on a series born in the window
        "slow_requests": None,  # never written
        "by_provider": BY_PROVIDER,
    },
    "database": {
        "total_queries": 120,
        "avg_query_latency_ms": 0.125 / 6 * 1000,
        "cache_hit_rate": 80.0,  # 24 hits, 6 misses per sample over the catalog and pricing caches
        "pool_utilization": None,  # never written
        "pool_errors": None,
        "redis_up": 1,
    },
    "business": {
        "active_api_keys": None,
        "active_subscriptions": None,
        "active_trials": None,
        "total_tokens_used": 60000,
        "total_credits_used": 20.0,
        "credits_deducted_usd": 15.0,  # 0.75 USD a sample by first attempts that succeeded
        # 2.5 USD on a series born 120 s before: 0.5 USD, then 0.25 a sample for 8 samples.
        "missed_deductions_usd": 2.5,
        "refunds_usd": 0.0,  # none: the deductions' counter says its code runs
        "payment_mismatches": 1,  # one under its plan's price; matched ones are no mismatch
        "default_priced_requests": 20,
    },
}


def never_written(metric: str, selector: str = "") -> str:
    shown = f"{metric}{{{selector}}}" if selector else metric
    return (
        f"{shown} has no series in the upstream over the last 1h"
        " (the gateway does not write it, or is down)"
    )


def never_written_nulls(selector: str = "") -> dict[str, str]:
    """The fields whose metrics the production gateway defines and never writes."""
    return {
        "providers.slow_requests": never_written("provider_slow_requests_total", selector),
        "database.pool_utilization": never_written("connection_pool_utilization_ratio", selector),
        "database.pool_errors": never_written("connection_pool_errors_total", selector),
        "business.active_api_keys": never_written("active_api_keys", selector),
        "business.active_subscriptions": never_written("subscription_count", selector),
        "business.active_trials": never_written("trial_active", selector),
    }


def busy_nulls(selector: str = "") -> dict[str, str]:
    return CELL_NULLS | never_written_nulls(selector)


QUIET: dict[str, dict[str, Any]] = {
    "gateway": _UP,
    "http": {
        "total_requests": 0,
        "request_rate_per_minute": 0.0,
        "error_rate": None,
        "avg_latency_ms": None,
        "p95_latency_ms": None,
        "in_progress": 0,
        "rate_limited_requests": 0,
    },
    "models": {
        "total_inference_requests": 0,
        "total_models": 0,
        "top_models": [],
        "avg_requests_per_model": None,
        "tokens_used_total": 0,
        "credits_used_total": 0.0,
        "avg_inference_latency_ms": None,
        "inference_error_rate": None,
        "ttfc_p95_ms": None,
        "stream_chunks_dropped": 0,
        "by_model": [],
    },
    "providers": {
        # No attempts: the providers are those with breaker series. groq's is open.
        "total_providers": 3,
        "healthy_providers": 2,
        "degraded_providers": 0,
        "unavailable_providers": 1,
        "avg_health_score": 200 / 3,
        "avg_error_rate": None,
        "avg_response_time_ms": None,
        "open_circuit_breakers": 1,
        "rejected_requests": 0,
        "slow_requests": None,
        "by_provider": [
            provider("groq", 0, None, None, "open", 0.0, "unavailable"),
            provider("fireworks", 0, None, None, "closed", 100.0, "healthy"),
            provider("together", 0, None, None, "half_open", 100.0, "healthy"),
        ],
    },
    "database": BUSY["database"]
    | {"total_queries": 0, "avg_query_latency_ms": None, "cache_hit_rate": None},
    "business": BUSY["business"]
    | {
        "total_tokens_used": 0,
        "total_credits_used": 0.0,
        "credits_deducted_usd": 0.0,
        "missed_deductions_usd": 0.0,
        "payment_mismatches": 0,
        "default_priced_requests": 0,
    },
}

QUIET_NULLS = (
    {
        "http.error_rate": "no requests in window (0/0)",
        "http.avg_latency_ms": "no requests in window (0/0)",
        "http.p95_latency_ms": "no requests in window (0/0)",
        "models.avg_requests_per_model": "no model requests in window (0/0)",
        "models.avg_inference_latency_ms": "no inference requests in window (0/0)",
        "models.inference_error_rate": "no inference requests in window (0/0)",
        "models.ttfc_p95_ms": "no streamed responses in the window (0/0)",
        "providers.avg_error_rate": "no provider had inference attempts in the window",
        "providers.avg_response_time_ms": "no provider calls in window (0/0)",
        "database.avg_query_latency_ms": "no database queries in window (0/0)",
        "database.cache_hit_rate": "no cache lookups in window (0/0)",
    }
    | {
        f"providers.by_provider[{name}].{column}": reason
        for name in ("groq", "fireworks", "together")
        for column, reason in (
            ("error_rate", "no inference attempts in the window (0/0)"),
            ("avg_response_time_ms", "no provider calls in the window (0/0)"),
        )
    }
    | never_written_nulls()
)

# The legacy gateway (job gatewayz-api): the older provider gauges win for the providers they
# cover, the generic cache counters add to the others, the business gauges exist, and the
# self-test generator's series are left out.
LEGACY_BUSY: dict[str, dict[str, Any]] = BUSY | {
    # gw-2's event loop lags 1.5 s.
    "gateway": _UP | {"event_loop_lag_ms": 1500.0},
    "http": BUSY["http"]
    | {
        "avg_latency_ms": 2.92 / 9 * 1000,
        "p95_latency_ms": 887.5,  # rank 8.55 between le=0.5 (7) and le=1 (9)
    },
    # One first chunk of 5 took 20 s: p95 is past the last bucket, at least 15 s.
    "models": BUSY["models"] | {"ttfc_p95_ms": 15_000.0},
    "providers": {
        # openai 90, anthropic 75, groq 0, openrouter 87.5 from their gauges; together and
        # fireworks 100 from the derived sources.
        "total_providers": 6,
        "healthy_providers": 4,
        "degraded_providers": 1,
        "unavailable_providers": 1,
        "avg_health_score": (90 + 75 + 0 + 87.5 + 100 + 100) / 6,
        "avg_error_rate": 100 * (0.1 + 0.25 + 0.5 + 0.125 + 0) / 5,
        # openai (6 calls, 3 s) and anthropic (4, 4 s) from provider_response_time_seconds,
        # groq (2, 20 s), openrouter (4, 5 s) and together (2, 1.5 s) from the newer histogram.
        "avg_response_time_ms": 33.5 / 18 * 1000,
        "open_circuit_breakers": 1,
        "rejected_requests": 41,
        "slow_requests": 20,  # groq's calls, one a sample
        # The error rates of the older gauges, and the response times of the older histogram
        # where written: the same pieces as the fields above.
        "by_provider": [
            provider("groq", 40, 50.0, 10_000.0, "open", 0.0, "unavailable"),
            provider("anthropic", 100, 25.0, 1000.0, "closed", 75.0, "degraded"),
            provider("openrouter", 80, 12.5, 1250.0, "closed", 87.5, "healthy"),
            provider("openai", 120, 10.0, 500.0, "closed", 90.0, "healthy"),
            provider("fireworks", 0, None, None, "closed", 100.0, "healthy"),
            provider("together", 40, 0.0, 750.0, "half_open", 100.0, "healthy"),
        ],
    },
    "database": BUSY["database"]
    | {
        "cache_hit_rate": 78.0,  # 39 hits, 11 misses
        "pool_utilization": 93.75,  # the read replica's pool, the busiest of two
        "pool_errors": 20,
        "redis_up": 0,  # gw-2 cannot reach it
    },
    "business": BUSY["business"]
    | {
        "active_api_keys": 42,
        "active_subscriptions": 18,
        "active_trials": 6,
        "refunds_usd": 2.5,  # 0.125 USD a sample
    },
}

# Staging (job gatewayz-api-staging) carries twice production's load: counts double, rates
# and shares stay.
_DOUBLED = {
    "http": ("total_requests", "request_rate_per_minute", "in_progress", "rate_limited_requests"),
    "models": (
        "total_inference_requests", "avg_requests_per_model", "tokens_used_total",
        "credits_used_total", "stream_chunks_dropped",
    ),
    "providers": ("rejected_requests",),
    "database": ("total_queries",),
    "business": (
        "total_tokens_used", "total_credits_used", "credits_deducted_usd",
        "missed_deductions_usd", "payment_mismatches", "default_priced_requests",
    ),
}  # fmt: skip
_DOUBLED_CELLS = ("requests", "tokens", "credits")


def _doubled(domain: str, name: str, value: Any) -> Any:
    if name.startswith("by_"):
        return [{k: 2 * v if k in _DOUBLED_CELLS else v for k, v in row.items()} for row in value]
    return 2 * value if name in _DOUBLED.get(domain, ()) else value


STAGING_BUSY = {
    domain: {name: _doubled(domain, name, value) for name, value in fields.items()}
    for domain, fields in BUSY.items()
}


def assert_same_metrics(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal field by field: counts, labels and lists exactly, other numbers to 1e-9 relative;
    a table row by row and cell by cell, in order."""
    assert actual.keys() == expected.keys()
    for domain, fields in expected.items():
        assert actual[domain].keys() == fields.keys(), domain
        for name, value in fields.items():
            got = actual[domain][name]
            where = f"{domain}.{name}"
            if isinstance(value, list) and value and isinstance(value[0], dict):
                assert isinstance(got, list), where
                assert len(got) == len(value), where
                for index, (row, expected_row) in enumerate(zip(got, value, strict=True)):
                    assert row.keys() == expected_row.keys(), (where, index)
                    for column, cell in expected_row.items():
                        _assert_same(row[column], cell, f"{where}[{index}].{column}")
            else:
                _assert_same(got, value, where)


def _assert_same(got: Any, value: Any, where: str) -> None:
    if isinstance(value, float):
        assert isinstance(got, float | int), where
        assert not isinstance(got, bool), where
        assert got == pytest.approx(value, rel=1e-9), where
    else:
        assert got == value, where
        assert type(got) is type(value), where


async def summary_at(
    client: Any, at: int, window: str = "5m", path: str = "/summary", **params: str
) -> Any:
    response = await client.get(path, params={"time": str(at), "window": window, **params})
    assert response.status == 200, await response.text()
    return json.loads(await response.text())


async def test_busy_window_gives_every_field_exactly(start_exporter: Any, engine_url: str) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, dataset.BUSY_AT)
    assert_same_metrics(document["metrics"], BUSY)
    assert document["nulls"] == busy_nulls()
    assert document["bounds"] == {"http.p95_latency_ms": "at_least"}
    assert document["cuts"] == {}
    assert document["liveness"]["status"] == "ok"
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
    assert document["bounds"] == {}


@pytest.mark.parametrize(
    ("at", "gateway", "liveness"),
    [
        pytest.param(
            dataset.PARTIAL_AT,
            # gw-2's lag is gone with it: gw-1's 1/512 s is left.
            {
                "targets_up": 1,
                "targets_total": 2,
                "newest_sample_age_ms": 0.0,
                "event_loop_lag_ms": 1.953125,
            },
            {
                "status": "degraded",
                "reason": "gateway_targets 1 of 2 (50 %)",
                "checks": {"gateway_targets": "degraded", "gateway_samples": "ok"},
            },
            id="one-replica-down",
        ),
        pytest.param(
            dataset.DOWN_AT,
            {
                "targets_up": 0,
                "targets_total": 2,
                "newest_sample_age_ms": 600_000.0,
                "event_loop_lag_ms": None,
            },
            {
                "status": "critical",
                "reason": "gateway_targets 0 of 2 (0 %); gateway_samples 600000 ms",
                "checks": {"gateway_targets": "critical", "gateway_samples": "critical"},
            },
            id="both-down",
        ),
        pytest.param(
            dataset.GONE_AT,
            {
                "targets_up": 0,
                "targets_total": 0,
                "newest_sample_age_ms": 3_600_000.0,
                "event_loop_lag_ms": None,
            },
            {
                "status": "critical",
                "reason": "gateway_samples ≥ 3600000 ms",
                "checks": {"gateway_targets": "unknown", "gateway_samples": "critical"},
            },
            id="no-sample-within-the-lookback",
        ),
    ],
)
async def test_the_gateways_own_liveness_is_served_exactly(
    start_exporter: Any,
    engine_url: str,
    at: int,
    gateway: dict[str, Any],
    liveness: dict[str, Any],
) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, at)
    assert_same_metrics({"gateway": document["metrics"]["gateway"]}, {"gateway": gateway})
    assert document["liveness"] == liveness


async def test_a_gateway_gone_for_longer_than_the_lookback_is_at_least_that_old(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, dataset.GONE_AT, explain="1")
    assert document["bounds"] == {"gateway.newest_sample_age_ms": "at_least"}
    explained = document["explain"]["gateway.newest_sample_age_ms"]["lower_bound"]
    assert explained["applies"] is True
    assert (
        explained["reason"]
        == "no sample of the gateway within the lookback; it is at least that old"
    )
    # Its counts are not zero: nothing says what it did.
    assert document["metrics"]["http"]["total_requests"] is None
    assert document["nulls"]["http.total_requests"] == never_written("fastapi_requests_total")


async def test_instant_before_any_data_gives_nulls_naming_the_missing_metrics(
    start_exporter: Any, engine_url: str, catalog: Catalog
) -> None:
    client = await start_exporter(engine_url)
    document = await summary_at(client, dataset.EMPTY_AT)
    flat = _flatten(document["metrics"])
    # No metric exists: no count claims 0, and every null names a metric the field reads.
    assert {key for key, value in flat.items() if value is not None} == {
        "gateway.newest_sample_age_ms"
    }
    for domain, name, spec in catalog.fields():
        key = f"{domain}.{name}"
        if key != "gateway.newest_sample_age_ms":
            assert spec.sources()[-1] in document["nulls"][key], key
            assert "in the upstream over the last 1h" in document["nulls"][key]
    assert document["liveness"]["status"] == "critical"


async def test_tables_keep_their_first_rows_up_to_their_limits_and_say_the_cut(
    start_exporter: Any, engine_url: str
) -> None:
    client = await start_exporter(engine_url, top_models=3, max_entities=2)
    document = await summary_at(client, dataset.BUSY_AT)
    metrics = document["metrics"]
    # The worst two providers, and the top models cut by the smaller limit of the two.
    assert_same_metrics(
        {"providers": {"by_provider": metrics["providers"]["by_provider"]}},
        {"providers": {"by_provider": BY_PROVIDER[:2]}},
    )
    assert_same_metrics(
        {"models": {"by_model": metrics["models"]["by_model"]}},
        {"models": {"by_model": BY_MODEL[:2]}},
    )
    assert document["cuts"] == {
        "models.by_model": {"rows": 2, "of": 5, "limit": "EXPORTER_MAX_ENTITIES"},
        "providers.by_provider": {"rows": 2, "of": 6, "limit": "EXPORTER_MAX_ENTITIES"},
    }
    # The scalar fields still count every provider and model.
    assert metrics["providers"]["total_providers"] == 6
    assert metrics["models"]["total_models"] == 5
    # The nulls of cells that were cut are gone with them.
    assert not [key for key in document["nulls"] if "[fireworks]" in key or "[llama" in key]
    top = await summary_at(await start_exporter(engine_url, top_models=3), dataset.BUSY_AT)
    assert [row["model"] for row in top["metrics"]["models"]["by_model"]] == [
        "gpt-4o", "claude-3-5-sonnet", "mistral-large",
    ]  # fmt: skip
    assert top["cuts"] == {"models.by_model": {"rows": 3, "of": 5, "limit": "EXPORTER_TOP_MODELS"}}


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
        elif spec.kind is Kind.TABLE:
            assert_table_is_the_oracles(oracle, spec, result, served)
        elif served is None or not result:
            # No series: null, or a count of a metric that exists (the gateway's own counter
            # of deductions, for refunds).
            assert result == [], f"{domain}.{name}"
            assert served is None or (spec.no_series_means_zero and served == 0), name
        else:
            assert len(result) == 1, name
            value = float(result[0]["value"][1])
            assert math.isfinite(value)
            assert served == pytest.approx(value, rel=1e-9), f"{domain}.{name}"
        bound = spec.render_lower_bound("5m")
        if bound is not None:
            answered = oracle.custom_query(bound, params={"time": dataset.BUSY_AT})
            assert bool(answered) == (f"{domain}.{name}" in document["bounds"]), name


def assert_table_is_the_oracles(
    oracle: PrometheusConnect, spec: FieldSpec, rows: list[Any], served: list[dict[str, Any]]
) -> None:
    """The rows are the series of the table's query, in the order of their values (ties by
    name); each cell the value (or the label) of its column's series for the row's entity."""
    key = spec.label or ""
    sign = 1 if spec.order == "ascending" else -1
    ordered = sorted(rows, key=lambda item: (sign * float(item["value"][1]), item["metric"][key]))
    assert [row[key] for row in served] == [item["metric"][key] for item in ordered]
    for name, column in spec.columns.items():
        answer = oracle.custom_query(column.render("5m"), params={"time": dataset.BUSY_AT})
        by_entity = {item["metric"][key]: item for item in answer}
        for row in served:
            item = by_entity.get(row[key])
            where = f"{key}={row[key]}: {name}"
            if item is None:
                assert row[name] == (0 if column.no_series_means_zero else None), where
            elif column.label is not None:
                assert row[name] == item["metric"][column.label], where
            else:
                assert row[name] == pytest.approx(float(item["value"][1]), rel=1e-9), where


async def test_engines_give_the_same_document(
    start_exporter: Any, prometheus: Any, victoria_metrics: Any
) -> None:
    on_prometheus = await start_exporter(prometheus.url)
    on_victoria = await start_exporter(victoria_metrics.url)
    for at in (
        dataset.EMPTY_AT, dataset.BUSY_AT, dataset.QUIET_AT, dataset.PARTIAL_AT, dataset.DOWN_AT,
        dataset.GONE_AT,
    ):  # fmt: skip
        first = await summary_at(on_prometheus, at)
        second = await summary_at(on_victoria, at)
        for key in ("nulls", "bounds", "cuts", "liveness"):
            assert first[key] == second[key], (at, key)
        assert_same_metrics(second["metrics"], first["metrics"])


# Several environments in one Prometheus, one selector at a time.


@pytest.mark.parametrize(
    "at", [dataset.EMPTY_AT, dataset.BUSY_AT, dataset.QUIET_AT, dataset.DOWN_AT, dataset.GONE_AT]
)
async def test_under_the_production_selector_the_summary_is_production_alone(
    start_exporter: Any, prometheus: Any, environments_prometheus: Any, at: int
) -> None:
    alone = await start_exporter(prometheus.url)
    selected = await start_exporter(
        environments_prometheus.url, selector=f'job="{dataset.PRODUCTION_JOB}"'
    )
    expected = await summary_at(alone, at)
    document = await summary_at(selected, at)
    assert_same_metrics(document["metrics"], expected["metrics"])
    assert document["bounds"] == expected["bounds"]
    assert document["liveness"] == expected["liveness"]
    # The reasons are the same, naming the series looked for with the selector.
    selected_series = f'{{job="{dataset.PRODUCTION_JOB}"}}'
    assert {
        key: reason.replace(selected_series, "") for key, reason in document["nulls"].items()
    } == expected["nulls"]
    for key, reason in document["nulls"].items():
        assert ("in the upstream over the last 1h" in reason) == (selected_series in reason), key


async def test_under_the_staging_selector_the_summary_is_staging_alone(
    start_exporter: Any, environments_url: str
) -> None:
    client = await start_exporter(environments_url, selector=f'job="{dataset.STAGING_JOB}"')
    document = await summary_at(client, dataset.BUSY_AT)
    assert_same_metrics(document["metrics"], STAGING_BUSY)
    assert document["nulls"] == busy_nulls(f'job="{dataset.STAGING_JOB}"')


async def test_the_legacy_gateway_gives_every_field_exactly_with_its_older_gauges(
    start_exporter: Any, environments_url: str
) -> None:
    client = await start_exporter(environments_url, selector=f'job="{dataset.LEGACY_JOB}"')
    document = await summary_at(client, dataset.BUSY_AT)
    assert_same_metrics(document["metrics"], LEGACY_BUSY)
    assert document["nulls"] == CELL_NULLS
    assert document["bounds"] == {"models.ttfc_p95_ms": "at_least"}


async def test_without_a_selector_liveness_counts_only_the_gateways_own_targets(
    start_exporter: Any, environments_url: str
) -> None:
    client = await start_exporter(environments_url)
    # Three environments of two replicas each; the node job's `up` is not counted.
    busy = await summary_at(client, dataset.BUSY_AT)
    assert busy["metrics"]["gateway"] == {
        "targets_up": 6, "targets_total": 6, "newest_sample_age_ms": 0.0,
        "event_loop_lag_ms": 1500.0,  # the legacy gateway's gw-2
    }  # fmt: skip
    down = await summary_at(client, dataset.DOWN_AT)
    assert down["metrics"]["gateway"]["targets_up"] == 0
    assert down["metrics"]["gateway"]["targets_total"] == 6
    assert down["liveness"]["status"] == "critical"


def _flatten(metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{d}.{f}": v for d, fields in metrics.items() for f, v in fields.items()}
