"""The gateway's metrics as a Prometheus scraping it holds them, with known values everywhere.

Shaped like the gateway's real output (Alpaca-Network/gatewayz-backend, d4e0b0c; see
docs/gateway.md): the names, labels, types and buckets of its code, one series per replica
(`instance`) under a scrape `job`, `_created` series for counters and histograms, `up` per
target, the legacy duplicates (http_requests_total, http_request_duration_seconds) it writes
beside its HTTP metrics, and circuit breaker gauges set on the replica that saw a transition.

Two variants:
- PRODUCTION: what production code writes. The older provider gauges, the generic cache
  counters, the business gauges, the connection-pool metrics and the slow-call counter are
  absent (the gateway defines them and never writes them), and requests to /api/metrics/test
  are scanners' 404s.
- LEGACY: a gateway that writes the older provider gauges (provider_availability,
  provider_error_rate, provider_response_time_seconds), the generic cache counters, the
  business gauges, the pools and the slow calls as well, and still runs the self-test
  generator (provider="test", model="test-model", POST /api/metrics/test answered 200), with
  faster HTTP requests, slower first chunks, an unreachable Redis and a lagging event loop.

Counters the gateway creates with their first event (labelled children) are "born" inside
the busy window here and there (`Counter.born`): their first sample already holds that event.

Timeline (seconds after `start`, one sample every 15 s):
- 0 .. 1800 (BUSY_AT): busy; every counter grows by a fixed step per sample, so
  `increase(x[5m])` is exactly 20 steps on both engines (samples sit on the window's edges).
- 1800 .. 3600 (QUIET_AT): quiet; counters flat, requests in progress 0.
- 3600 .. 4200 (PARTIAL_AT): replica gw-2 is down: `up` 0, no other sample from it.
- 4200 .. 4800 (DOWN_AT): gw-1 down too (its last samples at PARTIAL_AT): the gateway is down.
- 8700 (GONE_AT, END): no gateway sample for more than an hour; `up` still 0 for both.
Before `start` there is no data at all (EMPTY_AT).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from harness.servers import Sample

START = 1_767_225_600  # 2026-01-01T00:00:00Z
STEP = 15
BUSY_AT = START + 1800  # 2026-01-01T00:30:00Z
QUIET_AT = START + 3600  # 2026-01-01T01:00:00Z
PARTIAL_AT = START + 4200  # 01:10: gw-2 down since QUIET_AT
DOWN_AT = START + 4800  # 01:20: both replicas down, gw-1's last samples at PARTIAL_AT
GONE_AT = START + 8700  # 02:25: no gateway sample within the hour before
END = GONE_AT
EMPTY_AT = START - 3600  # an hour before any sample
REPLICAS = ("gw-1", "gw-2")
# When each replica's samples stop, in seconds after `start`.
LAST_SAMPLE = {"gw-1": PARTIAL_AT - START, "gw-2": QUIET_AT - START}

PRODUCTION = "production"
LEGACY = "legacy"
PRODUCTION_JOB = "gatewayz-api-production"
STAGING_JOB = "gatewayz-api-staging"
LEGACY_JOB = "gatewayz-api"
# A job of the same Prometheus that is not the gateway: liveness must never count it.
OTHER_JOB = "node"

Labels = Mapping[str, str]

_HTTP = {"app_name": "gatewayz"}
_CHAT = {**_HTTP, "method": "POST", "path": "/v1/chat/completions"}
_MODELS = {**_HTTP, "method": "GET", "path": "/v1/models"}
_SCAN = {**_HTTP, "method": "GET", "path": "/api/metrics/test"}
_SELF_TEST = {**_HTTP, "method": "POST", "path": "/api/metrics/test"}
_CREATED = START - 86_400  # when the replicas' processes created their series

# Bucket upper bounds, as in the gateway's code.
HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
INFERENCE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 25, 60)
PROVIDER_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 60, 90, 120)
OLD_PROVIDER_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10)
CHUNK_BUCKETS = (0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 10.0, 15.0)


@dataclass(frozen=True)
class Counter:
    """A counter on one replica, growing by `step` per sample while busy. A counter `born`
    (seconds before BUSY_AT) appears then, already at `first`; others at 1000 from `start`."""

    name: str  # without _total
    replica: str
    labels: Labels
    step: float
    born: int | None = None
    first: float = 0


@dataclass(frozen=True)
class Histogram:
    """A histogram (or, without buckets, a summary) on one replica: these observations per
    sample while busy."""

    name: str
    replica: str
    labels: Labels
    observations: tuple[float, ...]
    buckets: tuple[float, ...] | None


@dataclass(frozen=True)
class Gauge:
    """A gauge on one replica: `busy` while busy, `quiet` afterwards."""

    name: str
    replica: str
    labels: Labels
    busy: float
    quiet: float | None = None


Series = Counter | Histogram | Gauge


def _requests(replica: str, route: Labels, code: int, step: float) -> Counter:
    labels = {**route, "status_code": str(code), "status_class": f"{code // 100}xx"}
    return Counter("fastapi_requests", replica, labels, step)


def _durations(replica: str, route: Labels, *observations: float) -> Histogram:
    return Histogram(
        "fastapi_requests_duration_seconds", replica, route, observations, HTTP_BUCKETS
    )


def _inference(replica: str, provider: str, model: str, status: str, step: float) -> Counter:
    labels = {"provider": provider, "model": model, "status": status}
    return Counter("model_inference_requests", replica, labels, step)


def _inference_time(replica: str, provider: str, model: str, *observations: float) -> Histogram:
    labels = {"provider": provider, "model": model}
    return Histogram(
        "model_inference_duration_seconds", replica, labels, observations, INFERENCE_BUCKETS
    )


def _tokens(
    replica: str, provider: str, model: str, used_in: float, used_out: float
) -> list[Series]:
    return [
        Counter(
            "tokens_used", replica, {"provider": provider, "model": model, "token_type": kind}, step
        )
        for kind, step in (("input", used_in), ("output", used_out))
    ]


def _provider_calls(
    replica: str, provider: str, model: str, status: str, *observations: float
) -> Histogram:
    labels = {"provider": provider, "model": model, "status": status}
    return Histogram(
        "provider_response_duration_seconds", replica, labels, observations, PROVIDER_BUCKETS
    )


def _first_chunks(replica: str, provider: str, model: str, *observations: float) -> Histogram:
    labels = {"provider": provider, "model": model}
    return Histogram("time_to_first_chunk_seconds", replica, labels, observations, CHUNK_BUCKETS)


def _both(name: str, labels: Labels, value: float) -> list[Series]:
    """A gauge every replica reports with the same value (shared state, e.g. a database)."""
    return [Gauge(name, replica, labels, value) for replica in REPLICAS]


def _breaker(replica: str, provider: str, current: str, *others: str) -> list[Series]:
    """The breaker gauges of the replica that saw the transitions: the state it moved to at
    1, the states it left at 0."""
    return [
        Gauge(
            "circuit_breaker_current_state", replica, {"provider": provider, "state": state}, value
        )
        for state, value in ((current, 1), *((other, 0) for other in others))
    ]


# Per 15 s sample while busy. HTTP: 10 requests, one of them a 5xx, one a scanner's 404 on
# /api/metrics/test; 9 observed durations outside that path, 3 of them past 5 s.
_PRODUCTION_HTTP: list[Series] = [
    _requests("gw-1", _CHAT, 200, 5),
    _requests("gw-2", _CHAT, 200, 1),
    _requests("gw-1", _CHAT, 500, 1),
    _requests("gw-2", _CHAT, 429, 1),
    _requests("gw-1", _MODELS, 200, 1),
    _requests("gw-2", _SCAN, 404, 1),
    _durations("gw-1", _CHAT, 0.5, 0.5, 3, 3, 20, 20),
    _durations("gw-2", _CHAT, 0.2, 30),
    _durations("gw-1", _MODELS, 0.02),
    _durations("gw-2", _SCAN, 0.004),
    Gauge("fastapi_requests_in_progress", "gw-1", _CHAT, 3, 0),
    Gauge("fastapi_requests_in_progress", "gw-2", _CHAT, 1, 0),
    Gauge("fastapi_requests_in_progress", "gw-1", _MODELS, 0, 0),
    Gauge("fastapi_requests_in_progress", "gw-2", _SCAN, 0, 0),
]

# The same requests with the faster durations of the legacy variant: p95 within the buckets.
_LEGACY_HTTP: list[Series] = [
    *(series for series in _PRODUCTION_HTTP if not isinstance(series, Histogram)),
    _durations("gw-1", _CHAT, 0.05, 0.05, 0.2, 0.2, 0.4, 0.8),
    _durations("gw-2", _CHAT, 0.3, 0.9),
    _durations("gw-1", _MODELS, 0.02),
    _durations("gw-2", _SCAN, 0.004),
]

# Inference: 19 attempts per sample. openai 6 (1 error), anthropic 5, groq 2 (both errors, its
# breaker open), openrouter 4 (1 error), together 2 (breaker half-open); fireworks has no
# attempts and a breaker closed again after recovering. Durations only for successes, as the
# failover loop records none for a failed attempt: 15 of them, 30 s in all.
_CLAUDE = "claude-3-5-sonnet"
_INFERENCE: list[Series] = [
    _inference("gw-1", "openai", "gpt-4o", "success", 4),
    _inference("gw-2", "openai", "gpt-4o", "success", 1),
    _inference("gw-1", "openai", "gpt-4o", "error", 1),
    _inference("gw-1", "anthropic", _CLAUDE, "success", 3),
    _inference("gw-2", "anthropic", _CLAUDE, "success", 2),
    _inference("gw-1", "groq", "llama-3-70b", "error", 2),
    _inference("gw-2", "openrouter", "mistral-large", "success", 3),
    _inference("gw-2", "openrouter", "mistral-large", "error", 1),
    _inference("gw-1", "together", "llama-3-8b", "success", 2),
    _inference_time("gw-1", "openai", "gpt-4o", 2, 2, 2, 2),
    _inference_time("gw-2", "openai", "gpt-4o", 2),
    _inference_time("gw-1", "anthropic", _CLAUDE, 1.5, 1.5, 1.5),
    _inference_time("gw-2", "anthropic", _CLAUDE, 1.5, 1.5),
    _inference_time("gw-2", "openrouter", "mistral-large", 3, 3, 3),
    _inference_time("gw-1", "together", "llama-3-8b", 1.75, 1.75),
    *_tokens("gw-1", "openai", "gpt-4o", 800, 400),
    *_tokens("gw-2", "openai", "gpt-4o", 200, 100),
    *_tokens("gw-1", "anthropic", _CLAUDE, 800, 400),
    *_tokens("gw-2", "openrouter", "mistral-large", 200, 100),
    Counter("credits_used", "gw-1", {"provider": "openai", "model": "gpt-4o"}, 0.5),
    Counter("credits_used", "gw-1", {"provider": "anthropic", "model": _CLAUDE}, 0.25),
    Counter("credits_used", "gw-2", {"provider": "openrouter", "model": "mistral-large"}, 0.25),
]

# Provider calls: 19 per sample, 47.5 s in all.
_PROVIDERS: list[Series] = [
    _provider_calls("gw-1", "openai", "gpt-4o", "success", 2.4, 2.4, 2.4, 2.4),
    _provider_calls("gw-2", "openai", "gpt-4o", "success", 2.4),
    _provider_calls("gw-1", "openai", "gpt-4o", "error", 1),
    _provider_calls("gw-1", "anthropic", _CLAUDE, "success", 1.6, 1.6, 1.6),
    _provider_calls("gw-2", "anthropic", _CLAUDE, "success", 1.6, 1.6),
    _provider_calls("gw-1", "groq", "llama-3-70b", "error", 10, 10),
    _provider_calls("gw-2", "openrouter", "mistral-large", "success", 1.5, 1.5, 1.5),
    _provider_calls("gw-2", "openrouter", "mistral-large", "error", 0.5),
    _provider_calls("gw-1", "together", "llama-3-8b", "success", 0.75, 0.75),
    *_breaker("gw-1", "groq", "open", "closed"),
    *_breaker("gw-2", "fireworks", "closed", "open", "half_open"),
    *_breaker("gw-1", "together", "half_open", "open", "closed"),
    Counter("circuit_breaker_rejected_requests", "gw-1", {"provider": "groq"}, 2),
    # together's breaker refused one call before it went half-open, a minute before BUSY_AT.
    Counter("circuit_breaker_rejected_requests", "gw-1", {"provider": "together"}, 0, 60, 1),
]

# Streaming: 5 first chunks per sample (p95 2.75 s: rank 4.75 of 5 between le=2 (4) and le=3
# (5)); chunks dropped: 1 per sample on openrouter, and 2 on openai in one go 90 s before
# BUSY_AT, when that series was born.
_CHAT_LABELS = {"provider": "openai", "model": "gpt-4o"}
_ROUTER_LABELS = {"provider": "openrouter", "model": "mistral-large"}
_STREAMING: list[Series] = [
    _first_chunks("gw-1", "openai", "gpt-4o", 0.3, 0.6, 0.9),
    _first_chunks("gw-2", "openrouter", "mistral-large", 1.2, 2.5),
    Counter("stream_chunks_dropped", "gw-2", _ROUTER_LABELS, 1),
    Counter("stream_chunks_dropped", "gw-1", _CHAT_LABELS, 0, 90, 2),
]
# The legacy gateway's first chunks: one of 5 past the last bucket (15 s), so p95 is ≥ 15 s.
_LEGACY_STREAMING: list[Series] = [
    _first_chunks("gw-1", "openai", "gpt-4o", 0.3, 0.6, 0.9),
    _first_chunks("gw-2", "openrouter", "mistral-large", 1.2, 20),
    *(series for series in _STREAMING if isinstance(series, Counter)),
]

# Billing, per sample while busy: 0.75 USD deducted (first attempts that succeeded); retried
# and failed deductions beside them; 2.5 USD served but not billed in the window, all of it on
# a series born 120 s before BUSY_AT (0.5 USD, then 0.25 per sample); one payment under its
# plan's price (born 60 s before BUSY_AT), beside matched and within-tolerance ones; one
# request priced at the default price. No refund: its code is practically never reached.
_DEDUCTED = "gatewayz_credit_deduction_amount_usd"
_MISSED = "gatewayz_missed_credit_deductions_usd"
_PAYMENTS = "gatewayz_payment_amount_mismatch"
_CHAT_ENDPOINT = {"endpoint": "/v1/chat/completions"}


def _deductions(replica: str, status: str, streamed: str, step: float) -> Counter:
    labels = {"status": status, **_CHAT_ENDPOINT, "is_streaming": streamed}
    return Counter("gatewayz_credit_deduction", replica, labels, step)


_BILLING: list[Series] = [
    _deductions("gw-1", "success", "false", 8),
    _deductions("gw-2", "success", "true", 2),
    Counter(_DEDUCTED, "gw-1", {"status": "success", **_CHAT_ENDPOINT}, 0.5),
    Counter(_DEDUCTED, "gw-2", {"status": "success", **_CHAT_ENDPOINT}, 0.25),
    Counter(_DEDUCTED, "gw-2", {"status": "retried", **_CHAT_ENDPOINT}, 0.125),
    Counter(_DEDUCTED, "gw-2", {"status": "failed", **_CHAT_ENDPOINT}, 0.25, 120, 0.5),
    Counter(_MISSED, "gw-2", {"reason": "background_task_failure"}, 0),
    Counter(_MISSED, "gw-2", {"reason": "retry_exhausted"}, 0.25, 120, 0.5),
    Counter(_PAYMENTS, "gw-1", {"severity": "matched"}, 2),
    Counter(_PAYMENTS, "gw-1", {"severity": "within_tolerance"}, 1),
    Counter(_PAYMENTS, "gw-1", {"severity": "under"}, 0, 60, 1),
    Counter("gatewayz_default_pricing_usage", "gw-1", {"model": "hermes-3-llama-3.1-405b"}, 1),
]

# Database: 6 queries per sample, 0.125 s in all; caches: 24 hits and 6 misses per sample.
_QUERY_TIME = "database_query_duration_seconds"
_DATABASE: list[Series] = [
    Counter("database_queries", "gw-1", {"table": "users", "operation": "select"}, 3),
    Counter("database_queries", "gw-2", {"table": "api_keys", "operation": "select"}, 2),
    Counter("database_queries", "gw-1", {"table": "usage", "operation": "insert"}, 1),
    Histogram(_QUERY_TIME, "gw-1", {"table": "users"}, (0.015625, 0.015625, 0.03125), None),
    Histogram(_QUERY_TIME, "gw-2", {"table": "api_keys"}, (0.015625, 0.015625), None),
    Histogram(_QUERY_TIME, "gw-1", {"table": "usage"}, (0.03125,), None),
    Counter("catalog_cache_hits", "gw-1", {"gateway": "all"}, 9),
    Counter("catalog_cache_hits", "gw-2", {"gateway": "openrouter"}, 3),
    Counter("catalog_cache_misses", "gw-1", {"gateway": "all"}, 1),
    Counter("catalog_cache_misses", "gw-2", {"gateway": "openrouter"}, 2),
    Counter("gatewayz_pricing_cache_hits", "gw-1", {"cache_name": "model_pricing"}, 6),
    Counter("gatewayz_pricing_cache_hits", "gw-2", {"cache_name": "model_pricing"}, 6),
    Counter("gatewayz_pricing_cache_misses", "gw-1", {"cache_name": "model_pricing"}, 2),
    Counter("gatewayz_pricing_cache_misses", "gw-2", {"cache_name": "model_pricing"}, 1),
]

# Redis, the event loop and rate limits: one request a sample refused by the IP tier, and 3
# in one go by the velocity mode 120 s before BUSY_AT, when that series was born.
_RUNTIME: list[Series] = [
    *_both("redis_up", {}, 1),
    Gauge("gatewayz_event_loop_lag_seconds", "gw-1", {}, 0.001953125),
    Gauge("gatewayz_event_loop_lag_seconds", "gw-2", {}, 0.00390625),
    Counter("rate_limited_requests", "gw-2", {"limit_type": "security_ip_tier"}, 1),
    Counter("rate_limited_requests", "gw-1", {"limit_type": "velocity_mode_activated"}, 0, 120, 3),
    # Written by production and read by no field: found by doctor.
    Counter("api_key_lookup_attempts", "gw-1", {"status": "success"}, 8),
]
# The legacy gateway's: gw-2 cannot reach Redis and its event loop lags 1.5 s.
_LEGACY_RUNTIME: list[Series] = [
    Gauge("redis_up", "gw-1", {}, 1),
    Gauge("redis_up", "gw-2", {}, 0),
    Gauge("gatewayz_event_loop_lag_seconds", "gw-1", {}, 0.001953125),
    Gauge("gatewayz_event_loop_lag_seconds", "gw-2", {}, 1.5),
    *(series for series in _RUNTIME if isinstance(series, Counter)),
]

# The older gauges, generic cache counters and business gauges of the legacy variant.
_GROQ = {"provider": "groq", "model": "llama-3-70b"}
_OLD_TIME = "provider_response_time_seconds"
_OLDER: list[Series] = [
    *_both("provider_availability", {"provider": "openai"}, 1),
    *_both("provider_availability", {"provider": "anthropic"}, 1),
    *_both("provider_availability", {"provider": "groq"}, 0),
    *_both("provider_availability", {"provider": "openrouter"}, 1),
    *_both("provider_availability", {"provider": "test"}, 0),
    *_both("provider_error_rate", {"provider": "openai"}, 0.1),
    *_both("provider_error_rate", {"provider": "anthropic"}, 0.25),
    *_both("provider_error_rate", {"provider": "groq"}, 0.5),
    *_both("provider_error_rate", {"provider": "openrouter"}, 0.125),
    *_both("provider_error_rate", {"provider": "test"}, 1),
    Histogram(_OLD_TIME, "gw-1", {"provider": "openai"}, (0.5,) * 6, OLD_PROVIDER_BUCKETS),
    Histogram(_OLD_TIME, "gw-2", {"provider": "anthropic"}, (1,) * 4, OLD_PROVIDER_BUCKETS),
    Counter("cache_hits", "gw-1", {"cache_name": "models"}, 9),
    Counter("cache_hits", "gw-2", {"cache_name": "auth"}, 6),
    Counter("cache_misses", "gw-1", {"cache_name": "models"}, 1),
    Counter("cache_misses", "gw-2", {"cache_name": "auth"}, 4),
    *_both("active_api_keys", {"status": "active"}, 42),
    *_both("active_api_keys", {"status": "inactive"}, 7),
    *_both("subscription_count", {"plan_type": "pro", "billing_cycle": "monthly"}, 10),
    *_both("subscription_count", {"plan_type": "pro", "billing_cycle": "yearly"}, 5),
    *_both("subscription_count", {"plan_type": "team", "billing_cycle": "monthly"}, 3),
    *_both("trial_active", {"status": "active"}, 6),
    *_both("trial_active", {"status": "expired"}, 9),
    # Defined by the gateway and written by this one: pools, slow calls, refunds.
    *_both("connection_pool_utilization_ratio", {"pool_name": "supabase"}, 0.4),
    *_both("connection_pool_utilization_ratio", {"pool_name": "read_replica"}, 0.9375),
    Counter(
        "connection_pool_errors", "gw-1", {"pool_name": "supabase", "error_type": "timeout"}, 1
    ),
    Counter("provider_slow_requests", "gw-1", {**_GROQ, "severity": "slow"}, 1),
    Counter("gatewayz_credit_refunds_amount_usd", "gw-1", {"reason": "provider_error"}, 0.125),
]

# What the self-test generator wrote, on the replica it was called on.
_SELF_TEST_SERIES: list[Series] = [
    _requests("gw-1", _SELF_TEST, 200, 50),
    _durations("gw-1", _SELF_TEST, *(0.05,) * 50),
    _inference("gw-1", "test", "test-model", "success", 500),
]

VARIANTS: dict[str, list[Series]] = {
    PRODUCTION: [
        *_PRODUCTION_HTTP, *_INFERENCE, *_PROVIDERS, *_STREAMING, *_DATABASE, *_BILLING,
        *_RUNTIME,
    ],
    LEGACY: [
        *_LEGACY_HTTP, *_INFERENCE, *_PROVIDERS, *_LEGACY_STREAMING, *_DATABASE, *_BILLING,
        *_LEGACY_RUNTIME, *_OLDER, *_SELF_TEST_SERIES,
    ],
}  # fmt: skip


def samples(
    start: int = START,
    until: int | None = None,
    *,
    variant: str = PRODUCTION,
    job: str = PRODUCTION_JOB,
    scale: float = 1,
) -> Iterator[Sample]:
    """One environment of the gateway from `start` (default START) to END, cut after `until`.

    `scale` multiplies every count, sum and in-progress gauge (another environment's load).
    Tests that need the busy phase to end *now* (background refreshes evaluate at the current
    time) pass `start=now - 1800, until=now`.
    """
    busy_at = start + (BUSY_AT - START)
    last = start + (END - START) if until is None else until
    duplicates = [_legacy_duplicate(one) for one in VARIANTS[variant]]
    series = [*VARIANTS[variant], *(one for one in duplicates if one is not None)]
    for t in range(start, last + 1, STEP):
        steps = (min(t, busy_at) - start) // STEP  # one step per sample while busy
        busy = t <= busy_at
        for replica in REPLICAS:
            target = {"job": job, "instance": replica}
            alive = t - start <= LAST_SAMPLE[replica]
            yield Sample("up", target, t, 1 if alive else 0)
            if not alive:
                continue
            for one in series:
                if one.replica == replica:
                    yield from _points(one, target, t, steps, busy, scale, busy_at)


def _points(
    one: Series, target: Labels, t: int, steps: int, busy: bool, scale: float, busy_at: int
) -> Iterator[Sample]:
    labels = {**one.labels, **target}
    if isinstance(one, Gauge):
        value = one.busy if busy or one.quiet is None else one.quiet
        in_progress = one.name == "fastapi_requests_in_progress"
        yield Sample(one.name, labels, t, value * scale if in_progress else value)
    elif isinstance(one, Counter) and one.born is not None:
        born = busy_at - one.born
        if t >= born:
            grown = one.first + one.step * ((min(t, busy_at) - born) // STEP)
            yield Sample(f"{one.name}_total", labels, t, grown * scale)
            yield Sample(f"{one.name}_created", labels, t, born)
    elif isinstance(one, Counter):
        yield Sample(f"{one.name}_total", labels, t, 1000 + one.step * scale * steps)
        yield Sample(f"{one.name}_created", labels, t, _CREATED)
    else:
        count = len(one.observations) * scale
        yield Sample(f"{one.name}_count", labels, t, 1000 + count * steps)
        yield Sample(f"{one.name}_sum", labels, t, 1000 + sum(one.observations) * scale * steps)
        yield Sample(f"{one.name}_created", labels, t, _CREATED)
        if one.buckets is not None:
            for bound in (*one.buckets, None):
                below = sum(1 for o in one.observations if bound is None or o <= bound) * scale
                le = "+Inf" if bound is None else repr(float(bound))
                yield Sample(f"{one.name}_bucket", {**labels, "le": le}, t, 1000 + below * steps)


# The gateway's legacy names for its HTTP metrics, written beside them by the same middleware.
_DUPLICATES = {
    "fastapi_requests": "http_requests",
    "fastapi_requests_duration_seconds": "http_request_duration_seconds",
}


def _legacy_duplicate(one: Series) -> Series | None:
    name = _DUPLICATES.get(one.name)
    if name is None or isinstance(one, Gauge):
        return None
    labels = {("endpoint" if key == "path" else key): value for key, value in one.labels.items()}
    labels.pop("app_name")
    if isinstance(one, Counter):
        return Counter(name, one.replica, labels, one.step)
    return Histogram(name, one.replica, labels, one.observations, one.buckets)


def environments() -> Iterator[Sample]:
    """One Prometheus scraping three environments of the gateway and a job that is not it:
    production as `samples()`, staging with twice its load, and the legacy variant."""
    yield from samples()
    yield from samples(job=STAGING_JOB, scale=2)
    yield from samples(variant=LEGACY, job=LEGACY_JOB)
    for t in range(START, END + 1, STEP):
        yield Sample("up", {"job": OTHER_JOB, "instance": "node-1"}, t, 1)
        yield Sample("node_load1", {"job": OTHER_JOB, "instance": "node-1"}, t, 0.5)
