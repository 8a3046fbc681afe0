"""The metric families the real gateway's production code writes, as its code defines them.

Read from Alpaca-Network/gatewayz-backend at commit d4e0b0c (2026-08-20): the definitions in
`src/services/metrics/prometheus_metrics.py` and `src/middleware/concurrency_middleware.py`,
`src/services/cache/catalog_response_cache.py`, and every call site under `src/` that writes
them. Keyed by the name the gateway's code gives the family (a counter's with `_total`).

The gateway also writes a few families the demo does not simulate (velocity mode, request
stage timings, concurrency_rejected_total, free_model_usage_total, the upstream catalog health
checks); they are not listed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Family:
    type: str  # as prometheus-client reports it: counter, gauge, histogram, summary, info
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


HTTP = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BODY_SIZE = (100, 1000, 10000, 100000, 1000000)
ROUTE = ("app_name", "method", "path")
MODEL = ("provider", "model")
REDIS_GAUGES = (
    "redis_up",
    "redis_memory_used_bytes",
    "redis_memory_max_bytes",
    "redis_connected_clients",
    "redis_uptime_in_seconds",
    "redis_commands_processed_total",
    "redis_keyspace_hits_total",
    "redis_keyspace_misses_total",
    "redis_expired_keys_total",
    "redis_evicted_keys_total",
    "redis_total_connections_received_total",
)

WRITTEN: Mapping[str, Family] = {
    # The observability middleware, on every request but GET /metrics.
    "fastapi_app_info": Family("info", ("app_name",)),
    "fastapi_requests_total": Family("counter", (*ROUTE, "status_code", "status_class")),
    "fastapi_requests_duration_seconds": Family("histogram", ROUTE, HTTP),
    "fastapi_requests_in_progress": Family("gauge", ROUTE),
    "fastapi_request_size_bytes": Family("histogram", ROUTE, BODY_SIZE),
    "fastapi_response_size_bytes": Family("histogram", ROUTE, BODY_SIZE),
    "http_requests_total": Family("counter", ("method", "endpoint", "status_code", "status_class")),
    "http_request_duration_seconds": Family("histogram", ("method", "endpoint"), HTTP),
    "concurrency_active_requests": Family("gauge"),
    "concurrency_queued_requests": Family("gauge"),
    # Inference.
    "model_inference_requests_total": Family("counter", (*MODEL, "status")),
    "model_inference_duration_seconds": Family(
        "histogram", MODEL, (0.1, 0.5, 1, 2.5, 5, 10, 25, 60)
    ),
    "tokens_used_total": Family("counter", (*MODEL, "token_type")),
    "credits_used_total": Family("counter", MODEL),
    "provider_response_duration_seconds": Family(
        "histogram",
        (*MODEL, "status"),
        (0.1, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 90, 120),
    ),
    "time_to_first_chunk_seconds": Family(
        "histogram", MODEL, (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0)
    ),
    "stream_chunks_dropped_total": Family("counter", MODEL),
    "gatewayz_token_count_source_total": Family("counter", (*MODEL, "source")),
    # Circuit breakers.
    "circuit_breaker_state_transitions_total": Family(
        "counter", ("provider", "from_state", "to_state")
    ),
    "circuit_breaker_failures_total": Family("counter", ("provider", "state")),
    "circuit_breaker_successes_total": Family("counter", ("provider", "state")),
    "circuit_breaker_rejected_requests_total": Family("counter", ("provider",)),
    "circuit_breaker_current_state": Family("gauge", ("provider", "state")),
    # Caches.
    "catalog_cache_hits_total": Family("counter", ("gateway",)),
    "catalog_cache_misses_total": Family("counter", ("gateway",)),
    "catalog_cache_size_bytes": Family("gauge", ("gateway",)),
    "catalog_cache_operations_total": Family("counter", ("operation", "cache_layer", "result")),
    "gatewayz_pricing_cache_hits_total": Family("counter", ("cache_name",)),
    "gatewayz_pricing_cache_misses_total": Family("counter", ("cache_name",)),
    "gateway_model_count": Family("gauge", ("gateway",)),
    # Database.
    "database_queries_total": Family("counter", ("table", "operation")),
    "database_query_duration_seconds": Family("summary", ("table",)),
    # Redis (read from INFO on every scrape) and the event loop.
    **{name: Family("gauge") for name in REDIS_GAUGES},
    "redis_db_keys": Family("gauge", ("db",)),
    "gatewayz_event_loop_lag_seconds": Family("gauge"),
    # Rate limiting.
    "rate_limited_requests_total": Family("counter", ("limit_type",)),
    # Billing.
    "gatewayz_credit_deduction_total": Family("counter", ("status", "endpoint", "is_streaming")),
    "gatewayz_credit_deduction_amount_usd_total": Family("counter", ("status", "endpoint")),
    "gatewayz_credit_deduction_retry_total": Family("counter", ("attempt_number", "endpoint")),
    "gatewayz_credit_deduction_latency_seconds": Family(
        "histogram", ("endpoint", "is_streaming"), (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    ),
    "gatewayz_streaming_background_task_failures_total": Family(
        "counter", ("failure_type", "endpoint")
    ),
    "gatewayz_missed_credit_deductions_usd_total": Family("counter", ("reason",)),
    "gatewayz_payment_amount_mismatch_total": Family("counter", ("severity",)),
    "gatewayz_default_pricing_usage_total": Family("counter", ("model",)),
    "models_using_default_pricing": Family("gauge"),
    # API keys.
    "api_key_lookup_attempts_total": Family("counter", ("status",)),
    "api_key_tracking_success_total": Family("counter", ("request_type",)),
    "api_key_tracking_failures_total": Family("counter", ("reason",)),
    # prometheus-client's default collectors, which the gateway registers again after clearing
    # the default registry.
    "process_virtual_memory_bytes": Family("gauge"),
    "process_resident_memory_bytes": Family("gauge"),
    "process_start_time_seconds": Family("gauge"),
    "process_cpu_seconds_total": Family("counter"),
    "process_open_fds": Family("gauge"),
    "process_max_fds": Family("gauge"),
    "python_info": Family("gauge", ("implementation", "major", "minor", "patchlevel", "version")),
    "python_gc_objects_collected_total": Family("counter", ("generation",)),
    "python_gc_objects_uncollectable_total": Family("counter", ("generation",)),
    "python_gc_collections_total": Family("counter", ("generation",)),
}

# Defined by the gateway, written only by its tests or by helpers nothing calls: a real
# gateway exposes no sample of any of them.
NEVER_WRITTEN = frozenset(
    {
        "provider_availability",
        "provider_error_rate",
        "provider_response_time_seconds",
        "provider_slow_requests_total",  # its only writer, a decorator, decorates nothing
        "cache_hits_total",
        "cache_misses_total",
        "active_api_keys",
        "subscription_count",
        "trial_active",
        "api_key_usage_total",
        "user_credit_balance",
        "connection_pool_size",  # the pool monitor that would set these is never started
        "connection_pool_active_connections",
        "connection_pool_idle_connections",
        "connection_pool_utilization_ratio",
        "connection_pool_errors_total",
        "active_connections",
        "queue_size",
        "backend_ttfb_seconds",  # the tracker's backend_request() is never entered
        "streaming_duration_seconds",
        "gatewayz_api_cost_usd_total",
        "gatewayz_cost_per_1k_tokens_usd",
        "fastapi_exceptions_total",
        "cache_size_bytes",
        "current_rate_limit",
    }
)
