"""The metric families the real gateway writes, defined as its code defines them.

Names, types, label names and buckets follow the gateway (Alpaca-Network/gatewayz-backend,
`src/services/metrics/prometheus_metrics.py` and the modules that write outside it). Only
families that its production code actually writes are here: the ones it defines and never
writes (provider_availability, provider_error_rate, provider_response_time_seconds,
cache_hits_total, active_api_keys, subscription_count, trial_active, the connection-pool
gauges, ...) would have no samples on a real gateway, so the demo does not define them.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    Summary,
)

APP_NAME = "gatewayz"

HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
BODY_SIZE_BUCKETS = (100, 1000, 10000, 100000, 1000000)
INFERENCE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 25, 60)
PROVIDER_CALL_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 90, 120)
FIRST_CHUNK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0)
DEDUCTION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class GatewayMetrics:
    """Every family the gateway's production code writes, on one registry of the caller's."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=registry)

        # The gateway clears the default registry and registers these three again.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)

        route = ("app_name", "method", "path")
        model = ("provider", "model")

        # The observability middleware: every request except GET /metrics, on a normalised path.
        self.app_info = Info("fastapi_app_info", "The API application.", registry=registry)
        self.app_info.info({"app_name": APP_NAME})
        self.requests = counter(
            "fastapi_requests_total", "Requests served.", *route, "status_code", "status_class"
        )
        self.request_duration = histogram(
            "fastapi_requests_duration_seconds", "Request duration.", HTTP_BUCKETS, *route
        )
        self.in_progress = gauge("fastapi_requests_in_progress", "Requests in flight.", *route)
        self.request_size = histogram(
            "fastapi_request_size_bytes", "Request body size.", BODY_SIZE_BUCKETS, *route
        )
        self.response_size = histogram(
            "fastapi_response_size_bytes", "Response body size.", BODY_SIZE_BUCKETS, *route
        )
        # The older names the middleware still writes beside the ones above.
        self.legacy_requests = counter(
            "http_requests_total",
            "Requests served (older name).",
            "method",
            "endpoint",
            "status_code",
            "status_class",
        )
        self.legacy_duration = histogram(
            "http_request_duration_seconds",
            "Request duration (older name).",
            HTTP_BUCKETS,
            "method",
            "endpoint",
        )
        # The admission gate in front of the routes (its own module, not prometheus_metrics).
        self.concurrency_active = gauge("concurrency_active_requests", "Requests admitted.")
        self.concurrency_queued = gauge("concurrency_queued_requests", "Requests queued.")

        # Inference.
        self.inference = counter(
            "model_inference_requests_total", "Inference attempts.", *model, "status"
        )
        self.inference_duration = histogram(
            "model_inference_duration_seconds", "Inference duration.", INFERENCE_BUCKETS, *model
        )
        self.tokens = counter("tokens_used_total", "Tokens used.", *model, "token_type")
        self.credits = counter("credits_used_total", "Credits used (USD).", *model)
        self.provider_call = histogram(
            "provider_response_duration_seconds",
            "Duration of a call to a provider.",
            PROVIDER_CALL_BUCKETS,
            *model,
            "status",
        )
        self.first_chunk = histogram(
            "time_to_first_chunk_seconds",
            "Streaming time to the first chunk.",
            FIRST_CHUNK_BUCKETS,
            *model,
        )
        self.chunks_dropped = counter(
            "stream_chunks_dropped_total", "Stream chunks dropped by normalisation.", *model
        )
        self.token_count_source = counter(
            "gatewayz_token_count_source_total",
            "Streams by where their token counts came from.",
            *model,
            "source",
        )

        # Circuit breakers (one per provider that has one), moved only on transitions.
        self.breaker_transitions = counter(
            "circuit_breaker_state_transitions_total",
            "Breaker state transitions.",
            "provider",
            "from_state",
            "to_state",
        )
        self.breaker_failures = counter(
            "circuit_breaker_failures_total", "Failures seen by a breaker.", "provider", "state"
        )
        self.breaker_successes = counter(
            "circuit_breaker_successes_total", "Successes seen by a breaker.", "provider", "state"
        )
        self.breaker_rejected = counter(
            "circuit_breaker_rejected_requests_total",
            "Calls refused by an open breaker.",
            "provider",
        )
        self.breaker_state = gauge(
            "circuit_breaker_current_state", "1 for a breaker's current state.", "provider", "state"
        )

        # Caches.
        self.catalog_hits = counter("catalog_cache_hits_total", "Catalog cache hits.", "gateway")
        self.catalog_misses = counter(
            "catalog_cache_misses_total", "Catalog cache misses.", "gateway"
        )
        self.catalog_size = gauge("catalog_cache_size_bytes", "Catalog cache size.", "gateway")
        self.catalog_operations = counter(
            "catalog_cache_operations_total",
            "Catalog cache operations.",
            "operation",
            "cache_layer",
            "result",
        )
        self.pricing_hits = counter(
            "gatewayz_pricing_cache_hits_total", "Pricing cache hits.", "cache_name"
        )
        self.pricing_misses = counter(
            "gatewayz_pricing_cache_misses_total", "Pricing cache misses.", "cache_name"
        )
        self.gateway_models = gauge("gateway_model_count", "Models per upstream.", "gateway")

        # Database: a Summary without quantiles, so only _sum and _count.
        self.db_queries = counter(
            "database_queries_total", "Database queries.", "table", "operation"
        )
        self.db_duration = Summary(
            "database_query_duration_seconds",
            "Database query duration.",
            ["table"],
            registry=registry,
        )

        # Redis, read from its INFO on every scrape; gauges, some named like counters.
        self.redis_up = gauge("redis_up", "Redis reachable (1) or not (0).")
        self.redis_memory_used = gauge("redis_memory_used_bytes", "Redis memory used.")
        self.redis_memory_max = gauge("redis_memory_max_bytes", "Redis maxmemory (0: none).")
        self.redis_clients = gauge("redis_connected_clients", "Redis clients.")
        self.redis_uptime = gauge("redis_uptime_in_seconds", "Redis uptime.")
        self.redis_commands = gauge("redis_commands_processed_total", "Redis commands.")
        self.redis_hits = gauge("redis_keyspace_hits_total", "Redis key hits.")
        self.redis_misses = gauge("redis_keyspace_misses_total", "Redis key misses.")
        self.redis_expired = gauge("redis_expired_keys_total", "Redis keys expired.")
        self.redis_evicted = gauge("redis_evicted_keys_total", "Redis keys evicted.")
        self.redis_connections = gauge(
            "redis_total_connections_received_total", "Redis connections accepted."
        )
        self.redis_db_keys = gauge("redis_db_keys", "Keys per Redis database.", "db")
        self.event_loop_lag = gauge("gatewayz_event_loop_lag_seconds", "Event loop lag.")

        # Rate limiting (the security middleware's IP tier; its 429s never reach the routes).
        self.rate_limited = counter(
            "rate_limited_requests_total", "Requests refused by a rate limit.", "limit_type"
        )

        # Billing.
        self.deductions = counter(
            "gatewayz_credit_deduction_total",
            "Credit deduction attempts.",
            "status",
            "endpoint",
            "is_streaming",
        )
        self.deducted_usd = counter(
            "gatewayz_credit_deduction_amount_usd_total",
            "Credit deduction amounts (USD).",
            "status",
            "endpoint",
        )
        self.deduction_retries = counter(
            "gatewayz_credit_deduction_retry_total",
            "Credit deduction retries.",
            "attempt_number",
            "endpoint",
        )
        self.deduction_latency = histogram(
            "gatewayz_credit_deduction_latency_seconds",
            "Credit deduction latency.",
            DEDUCTION_BUCKETS,
            "endpoint",
            "is_streaming",
        )
        self.background_failures = counter(
            "gatewayz_streaming_background_task_failures_total",
            "Streaming background task failures.",
            "failure_type",
            "endpoint",
        )
        self.missed_usd = counter(
            "gatewayz_missed_credit_deductions_usd_total",
            "Money served but not billed (USD).",
            "reason",
        )
        self.payment_checks = counter(
            "gatewayz_payment_amount_mismatch_total",
            "Payments checked against the plan price, by outcome.",
            "severity",
        )
        self.default_priced = counter(
            "gatewayz_default_pricing_usage_total", "Requests priced at the default price.", "model"
        )
        self.default_priced_models = gauge(
            "models_using_default_pricing", "Models priced at the default price."
        )

        # API keys.
        self.key_lookups = counter("api_key_lookup_attempts_total", "API key lookups.", "status")
        self.key_tracked = counter(
            "api_key_tracking_success_total", "Chat requests with a tracked key.", "request_type"
        )
        self.key_untracked = counter(
            "api_key_tracking_failures_total", "Chat requests without a tracked key.", "reason"
        )
