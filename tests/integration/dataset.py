"""The gateway's metrics over one hour, with increments chosen so every field has a known value.

Timeline (unix seconds, one sample per series every 15 s, two gateway replicas for gauges):
- BUSY phase, START .. BUSY_AT (30 min): every counter grows by a fixed step per sample, so
  `increase(x[5m])` is exactly 20 steps on both engines (no extrapolation: samples sit on
  the window's edges).
- QUIET phase, BUSY_AT .. QUIET_AT (30 min): counters stay flat, in-progress gauges drop to 0.
- Before START there is no data at all (EMPTY_AT).

The synthetic self-test series (provider="test", model="test-model", path="/api/metrics/test")
and the legacy duplicates (http_requests_total, http_request_duration_seconds) carry large
values, so any query that read them would give a visibly wrong number.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from tests.integration.servers import Sample

START = 1_767_225_600  # 2026-01-01T00:00:00Z
STEP = 15
BUSY_AT = START + 1800  # 2026-01-01T00:30:00Z
QUIET_AT = START + 3600  # 2026-01-01T01:00:00Z
EMPTY_AT = START - 3600  # an hour before any sample
REPLICAS = ("gw-1", "gw-2")

Labels = Mapping[str, str]

# (metric, labels, increment per 15 s step) for every counter; counters start at 1000.
_HTTP = {"app_name": "gatewayz"}
COUNTERS: list[tuple[str, Labels, float]] = [
    (
        "fastapi_requests_total",
        {**_HTTP, "method": "POST", "path": "/v1/chat/completions", "status_code": "200"},
        6,
    ),
    (
        "fastapi_requests_total",
        {**_HTTP, "method": "POST", "path": "/v1/chat/completions", "status_code": "500"},
        1,
    ),
    (
        "fastapi_requests_total",
        {**_HTTP, "method": "POST", "path": "/v1/chat/completions", "status_code": "429"},
        1,
    ),
    (
        "fastapi_requests_total",
        {**_HTTP, "method": "GET", "path": "/v1/models", "status_code": "200"},
        2,
    ),
    (
        "fastapi_requests_total",
        {**_HTTP, "method": "GET", "path": "/api/metrics/test", "status_code": "500"},
        50,
    ),
    (
        "http_requests_total",
        {"method": "POST", "endpoint": "/v1/chat/completions", "status_code": "500"},
        100,
    ),
    (
        "model_inference_requests_total",
        {"provider": "openai", "model": "gpt-4o", "status": "success"},
        5,
    ),
    (
        "model_inference_requests_total",
        {"provider": "openai", "model": "gpt-4o", "status": "error"},
        1,
    ),
    (
        "model_inference_requests_total",
        {"provider": "anthropic", "model": "claude-3-5-sonnet", "status": "success"},
        4,
    ),
    (
        "model_inference_requests_total",
        {"provider": "groq", "model": "llama-3-70b", "status": "success"},
        2,
    ),
    (
        "model_inference_requests_total",
        {"provider": "openrouter", "model": "mistral-large", "status": "success"},
        1,
    ),
    (
        "model_inference_requests_total",
        {"provider": "test", "model": "test-model", "status": "success"},
        500,
    ),
    ("tokens_used_total", {"provider": "openai", "model": "gpt-4o", "token_type": "input"}, 1000),
    ("tokens_used_total", {"provider": "openai", "model": "gpt-4o", "token_type": "output"}, 500),
    (
        "tokens_used_total",
        {"provider": "anthropic", "model": "claude-3-5-sonnet", "token_type": "input"},
        800,
    ),
    (
        "tokens_used_total",
        {"provider": "anthropic", "model": "claude-3-5-sonnet", "token_type": "output"},
        400,
    ),
    (
        "tokens_used_total",
        {"provider": "test", "model": "test-model", "token_type": "input"},
        100_000,
    ),
    ("credits_used_total", {"provider": "openai", "model": "gpt-4o"}, 0.5),
    ("credits_used_total", {"provider": "anthropic", "model": "claude-3-5-sonnet"}, 0.25),
    ("credits_used_total", {"provider": "test", "model": "test-model"}, 100),
    ("database_queries_total", {"table": "users", "operation": "select"}, 3),
    ("database_queries_total", {"table": "api_keys", "operation": "select"}, 2),
    ("database_queries_total", {"table": "usage", "operation": "insert"}, 1),
    ("cache_hits_total", {"cache_name": "models"}, 9),
    ("cache_hits_total", {"cache_name": "auth"}, 6),
    ("cache_misses_total", {"cache_name": "models"}, 1),
    ("cache_misses_total", {"cache_name": "auth"}, 4),
    ("api_key_usage_total", {"status": "success"}, 7),
]

# Histograms (and the database Summary, which has no buckets): per step, the count, the sum
# and the cumulative bucket counts by upper bound.
_BOUNDS = ("0.1", "0.25", "0.5", "1", "+Inf")
HISTOGRAMS: list[tuple[str, Labels, float, float, tuple[float, ...] | None]] = [
    (
        "fastapi_requests_duration_seconds",
        {**_HTTP, "method": "POST", "path": "/v1/chat/completions"},
        8,
        2.0,
        (3, 5, 7, 8, 8),
    ),
    (
        "fastapi_requests_duration_seconds",
        {**_HTTP, "method": "GET", "path": "/v1/models"},
        2,
        0.5,
        (1, 2, 2, 2, 2),
    ),
    (
        "fastapi_requests_duration_seconds",
        {**_HTTP, "method": "GET", "path": "/api/metrics/test"},
        50,
        500.0,
        (0, 0, 0, 0, 50),
    ),
    (
        "http_request_duration_seconds",
        {"method": "POST", "endpoint": "/v1/chat/completions"},
        100,
        1000.0,
        (0, 0, 0, 0, 100),
    ),
    ("model_inference_duration_seconds", {"provider": "openai", "model": "gpt-4o"}, 6, 6.0, None),
    (
        "model_inference_duration_seconds",
        {"provider": "anthropic", "model": "claude-3-5-sonnet"},
        4,
        2.0,
        None,
    ),
    (
        "model_inference_duration_seconds",
        {"provider": "groq", "model": "llama-3-70b"},
        2,
        0.5,
        None,
    ),
    (
        "model_inference_duration_seconds",
        {"provider": "openrouter", "model": "mistral-large"},
        1,
        1.5,
        None,
    ),
    (
        "model_inference_duration_seconds",
        {"provider": "test", "model": "test-model"},
        500,
        5000.0,
        None,
    ),
    ("provider_response_time_seconds", {"provider": "openai"}, 6, 3.0, None),
    ("provider_response_time_seconds", {"provider": "anthropic"}, 4, 4.0, None),
    ("provider_response_time_seconds", {"provider": "test"}, 10, 1000.0, None),
    ("database_query_duration_seconds", {"table": "users"}, 4, 0.0625, None),
    ("database_query_duration_seconds", {"table": "api_keys"}, 2, 0.0625, None),
]

# Gauges reported identically by every replica: (metric, labels, value).
SHARED_GAUGES: list[tuple[str, Labels, float]] = [
    ("provider_availability", {"provider": "openai"}, 1),
    ("provider_availability", {"provider": "anthropic"}, 1),
    ("provider_availability", {"provider": "groq"}, 0),
    ("provider_availability", {"provider": "openrouter"}, 1),
    ("provider_availability", {"provider": "test"}, 0),
    ("provider_error_rate", {"provider": "openai"}, 0.1),
    ("provider_error_rate", {"provider": "anthropic"}, 0.25),
    ("provider_error_rate", {"provider": "groq"}, 0.5),
    ("provider_error_rate", {"provider": "openrouter"}, 0.125),
    ("provider_error_rate", {"provider": "test"}, 1),
    ("active_api_keys", {"status": "active"}, 42),
    ("active_api_keys", {"status": "inactive"}, 7),
    ("subscription_count", {"plan_type": "pro", "billing_cycle": "monthly"}, 10),
    ("subscription_count", {"plan_type": "pro", "billing_cycle": "yearly"}, 5),
    ("subscription_count", {"plan_type": "team", "billing_cycle": "monthly"}, 3),
    ("trial_active", {"status": "active"}, 6),
    ("trial_active", {"status": "expired"}, 9),
    ("user_credit_balance", {"plan_type": "pro"}, 1234.5),
]

# Requests in flight on one replica during the busy phase; 0 once it is quiet.
IN_PROGRESS: list[tuple[Labels, float]] = [
    ({**_HTTP, "method": "POST", "path": "/v1/chat/completions"}, 3),
    ({**_HTTP, "method": "GET", "path": "/v1/models"}, 1),
    ({**_HTTP, "method": "GET", "path": "/api/metrics/test"}, 7),
]


def samples(start: int = START, until: int | None = None) -> Iterator[Sample]:
    """The hour of data from `start` (default START), cut after `until` if given.

    Tests that need the busy phase to end *now* (background refreshes evaluate at the current
    time) pass `start=now - 1800, until=now`.
    """
    busy_at = start + (BUSY_AT - START)
    last = start + (QUIET_AT - START) if until is None else until
    for t in range(start, last + 1, STEP):
        steps = (min(t, busy_at) - start) // STEP  # one step per sample while busy
        busy = t <= busy_at
        for name, labels, step in COUNTERS:
            yield Sample(name, labels, t, 1000 + step * steps)
        for name, labels, count, total, buckets in HISTOGRAMS:
            yield Sample(f"{name}_count", labels, t, 1000 + count * steps)
            yield Sample(f"{name}_sum", labels, t, 1000 + total * steps)
            for bound, cumulative in zip(_BOUNDS, buckets or (), strict=False):
                yield Sample(
                    f"{name}_bucket", {**labels, "le": bound}, t, 1000 + cumulative * steps
                )
        for replica in REPLICAS:
            for name, labels, value in SHARED_GAUGES:
                yield Sample(name, {**labels, "instance": replica}, t, value)
        for labels, value in IN_PROGRESS:
            yield Sample(
                "fastapi_requests_in_progress",
                {**labels, "instance": REPLICAS[0]},
                t,
                value if busy else 0,
            )
