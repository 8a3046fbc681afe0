"""A simulated "Gatewayz" AI API gateway, so the exporter has something real to summarise.

It serves ``GET /metrics`` with the same metric families, labels and quirks as the real gateway
(legacy duplicate HTTP metrics, a Summary without quantiles, the self-test series), and a
background task invents traffic every half second: load rises and falls sinusoidally, error
bursts and provider outages come and go, and model popularity is skewed so a top 3 is visible.

Run: ``python -m demo.gateway --host 127.0.0.1 --port 8000 [--seed 42]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    generate_latest,
)

APP_NAME = "gatewayz"
TICK_SECONDS = 0.5
BASE_RPS = 40.0  # mean request rate; the sine wave swings it between ~16 and ~64 req/s
LOAD_PERIOD_SECONDS = 240.0  # one full "day" of load in four minutes, so a demo shows it

# Buckets as in the real gateway, so histogram_quantile gives the same resolution.
HTTP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
INFERENCE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 25, 60)
PROVIDER_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10)


@dataclass(frozen=True)
class Model:
    provider: str
    name: str
    weight: float  # relative popularity: the skew gives a clear top 3
    latency: float  # median inference seconds
    credits_per_1k: float  # per 1000 tokens (input and output alike); per image for images


CHAT_MODELS = (
    Model("openai", "gpt-4o-mini", 30, 0.9, 0.0006),
    Model("anthropic", "claude-3-5-sonnet", 22, 1.4, 0.009),
    Model("groq", "llama-3.3-70b-versatile", 16, 0.35, 0.0008),
    Model("openrouter", "deepseek/deepseek-chat", 8, 1.2, 0.0011),
    Model("openai", "gpt-4o", 6, 1.3, 0.0075),
    Model("fireworks", "llama-v3p1-8b-instruct", 5, 0.5, 0.0002),
    Model("openrouter", "google/gemini-2.0-flash", 5, 0.8, 0.0004),
    Model("anthropic", "claude-3-5-haiku", 4, 0.9, 0.002),
)
IMAGE_MODELS = (
    Model("openai", "dall-e-3", 2, 4.5, 0.04),
    Model("fireworks", "flux-1-schnell", 1, 2.5, 0.003),
)
PROVIDERS = sorted({m.provider for m in CHAT_MODELS + IMAGE_MODELS})
# (method, path, weight); the self-test endpoint is driven separately, on a timer.
ENDPOINTS = (
    ("POST", "/v1/chat/completions", 64),
    ("GET", "/v1/models", 14),
    ("GET", "/health", 12),
    ("GET", "/v1/user/balance", 7),
    ("POST", "/v1/images/generations", 3),
)
# The real gateway's /api/metrics/test injects these, so the exporter must filter them out.
TEST_PROVIDER, TEST_MODEL, TEST_PATH = "test", "test-model", "/api/metrics/test"


class Metrics:
    """Every family the real gateway exports that the exporter reads, on a private registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        def gauge(name: str, doc: str, *labels: str) -> Gauge:
            return Gauge(name, doc, labels, registry=registry)

        def histogram(name: str, doc: str, buckets: tuple[float, ...], *labels: str) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=registry)

        route, pm = ("app_name", "method", "path"), ("provider", "model")
        self.requests = counter("fastapi_requests_total", "Requests", *route, "status_code")
        self.duration = histogram(
            "fastapi_requests_duration_seconds", "Request duration", HTTP_BUCKETS, *route
        )
        self.in_progress = gauge("fastapi_requests_in_progress", "Requests in flight", *route)
        # Legacy duplicates of the two above: the exporter must not double count them.
        self.legacy_requests = counter(
            "http_requests_total", "Requests (legacy)", "method", "endpoint", "status_code"
        )
        self.legacy_duration = histogram(
            "http_request_duration_seconds", "Duration (legacy)", HTTP_BUCKETS, "method", "endpoint"
        )
        self.inference = counter("model_inference_requests_total", "Inferences", *pm, "status")
        self.inference_duration = histogram(
            "model_inference_duration_seconds", "Inference duration", INFERENCE_BUCKETS, *pm
        )
        self.tokens = counter("tokens_used_total", "Tokens used", *pm, "token_type")
        self.credits = counter("credits_used_total", "Credits consumed", *pm)
        self.availability = gauge("provider_availability", "1 = up, 0 = down", "provider")
        self.error_rate = gauge("provider_error_rate", "Error rate (0-1)", "provider")
        self.provider_time = histogram(
            "provider_response_time_seconds", "Provider latency", PROVIDER_BUCKETS, "provider"
        )
        self.db_queries = counter("database_queries_total", "DB queries", "table", "operation")
        # A Summary without quantiles, as in the real gateway: only _sum and _count exist.
        self.db_duration = Summary(
            "database_query_duration_seconds", "DB query duration", ["table"], registry=registry
        )
        self.cache_hits = counter("cache_hits_total", "Cache hits", "cache_name")
        self.cache_misses = counter("cache_misses_total", "Cache misses", "cache_name")
        self.api_keys = gauge("active_api_keys", "API keys", "status")
        self.subscriptions = gauge("subscription_count", "Subs", "plan_type", "billing_cycle")
        self.trials = gauge("trial_active", "Trials", "status")
        self.balance = gauge("user_credit_balance", "Credit balance", "plan_type")
        self.key_usage = counter("api_key_usage_total", "API key usage", "status")


class Simulator:
    """Turns time into traffic. All randomness comes from one seeded ``random.Random``."""

    def __init__(self, metrics: Metrics, rng: random.Random) -> None:
        self.m, self.rng = metrics, rng
        self.start = self.now = time.monotonic()
        self.load = 1.0
        self.busy: dict[tuple[str, str], float] = {}  # seconds of work started this tick, per route
        self.errors: dict[str, list[int]] = {}  # provider -> [failed, total] this tick
        self.burst_until = 0.0
        self.next_burst = self.start + rng.uniform(40, 90)
        self.incidents: dict[str, tuple[float, float]] = {}  # provider -> (ends at, P(error))
        self.next_incident = self.start + rng.uniform(60, 120)
        self.ewma = dict.fromkeys([*PROVIDERS, TEST_PROVIDER], 0.01)
        # Business gauges walk slowly around plausible levels: the real gateway sets them from
        # periodic database counts, not per request.
        k, sub, trial = metrics.api_keys.labels, metrics.subscriptions.labels, metrics.trials.labels
        self.counts: dict[Gauge, float] = {
            k("active"): 1240, k("inactive"): 315,
            sub("pro", "monthly"): 410, sub("pro", "yearly"): 96, sub("max", "monthly"): 72,
            sub("max", "yearly"): 18, sub("enterprise", "yearly"): 7,
            trial("active"): 138, trial("expired"): 1620, trial("converted"): 214,
        }  # fmt: skip
        self.balances = {
            "free": 1800.0, "trial": 9400.0, "pro": 52000.0, "max": 31000.0, "enterprise": 1.2e5
        }  # fmt: skip
        for provider in [*PROVIDERS, TEST_PROVIDER]:
            self.m.availability.labels(provider).set(1)

    def tick(self) -> None:
        self.now = time.monotonic()
        self._update_incidents()
        phase = 2 * math.pi * (self.now - self.start) / LOAD_PERIOD_SECONDS
        self.load = max(0.1, 1 + 0.6 * math.sin(phase) + self.rng.gauss(0, 0.05))
        mean = BASE_RPS * self.load * TICK_SECONDS
        count = max(0, round(self.rng.gauss(mean, math.sqrt(mean))))  # ~Poisson arrivals
        self.busy, self.errors = {}, {p: [0, 0] for p in self.ewma}
        weights = [w for _, _, w in ENDPOINTS]
        for method, path, _ in self.rng.choices(ENDPOINTS, weights, k=count):
            self._request(method, path)
        # The self-test fires every ~2 s regardless of load, like the real gateway's probe.
        if self.rng.random() < TICK_SECONDS / 2:
            self._request("GET", TEST_PATH)
        # Little's law: requests in flight = arrival rate x mean time in the system.
        for method, path, _ in (*ENDPOINTS, ("GET", TEST_PATH, 0)):
            in_flight = self.busy.get((method, path), 0.0) / TICK_SECONDS
            self.m.in_progress.labels(APP_NAME, method, path).set(round(in_flight))
        for provider, (failed, total) in self.errors.items():
            # An exponentially weighted error ratio where each request moves it ~5%: smooth
            # for busy providers, and a single failure does not make a quiet one look sick.
            self.ewma[provider] += (1 - 0.95**total) * (
                failed / max(total, 1) - self.ewma[provider]
            )
            self.m.error_rate.labels(provider).set(round(self.ewma[provider], 4))
            down = self.incidents.get(provider, (0, 0.0))[1] >= 1
            self.m.availability.labels(provider).set(0 if down else 1)
        self._drift_business_gauges()

    def _update_incidents(self) -> None:
        now = self.now
        if now >= self.next_burst:  # a burst of 5xx, e.g. a bad deploy or a flaky dependency
            self.burst_until = now + self.rng.uniform(10, 25)
            self.next_burst = now + self.rng.uniform(120, 300)
        for provider, (ends_at, _) in list(self.incidents.items()):
            if now >= ends_at:
                del self.incidents[provider]
        if now >= self.next_incident:  # an upstream provider goes down, or turns flaky, a while
            p_error = 1.0 if self.rng.random() < 0.5 else self.rng.uniform(0.2, 0.4)
            self.incidents[self.rng.choice(PROVIDERS)] = (now + self.rng.uniform(20, 60), p_error)
            self.next_incident = now + self.rng.uniform(90, 240)

    def _request(self, method: str, path: str) -> None:
        rng, m = self.rng, self.m
        status, duration, model = 200, rng.lognormvariate(math.log(0.03), 0.5), None
        if path in ("/v1/chat/completions", "/v1/images/generations"):
            pool = CHAT_MODELS if path == "/v1/chat/completions" else IMAGE_MODELS
            model = rng.choices(pool, [x.weight for x in pool])[0]
        elif path == TEST_PATH:
            # Huge token counts on purpose: unfiltered, test-model would top every ranking.
            model = Model(TEST_PROVIDER, TEST_MODEL, 0, 0.2, 0.05)
        if path not in ("/health", TEST_PATH):  # the probe and health checks carry no API key
            status = self._client_status()
            if status == 200:
                hit = rng.random() < 0.85
                (m.cache_hits if hit else m.cache_misses).labels("auth_cache").inc()
                if not hit:
                    self._query("api_keys", "select")
            key_status = {401: "invalid", 429: "rate_limited"}.get(status, "success")
            m.key_usage.labels(key_status).inc()
        if path == "/v1/models" and status == 200:
            hit = rng.random() < 0.92
            (m.cache_hits if hit else m.cache_misses).labels("model_catalog").inc()
            if not hit:
                self._query("models", "select")
                duration += rng.uniform(0.1, 0.4)
        elif path == "/v1/user/balance" and status == 200:
            self._query("users", "select")
        elif model is not None and status == 200:
            status, duration = self._infer(model)
        if status == 200 and path != "/health" and rng.random() < 0.005 * self._burst():
            status = 500  # unhandled exception in the gateway itself
        code = str(status)
        m.requests.labels(APP_NAME, method, path, code).inc()
        m.duration.labels(APP_NAME, method, path).observe(duration)
        m.legacy_requests.labels(method, path, code).inc()
        m.legacy_duration.labels(method, path).observe(duration)
        self.busy[(method, path)] = self.busy.get((method, path), 0.0) + duration

    def _client_status(self) -> int:
        # Rate limiting bites harder at the top of the load wave.
        roll, limited = self.rng.random(), 0.005 + 0.03 * max(0.0, self.load - 1.2)
        for status, share in ((401, 0.02), (400, 0.025), (429, limited)):
            if roll < share:
                return status
            roll -= share
        return 200

    def _infer(self, model: Model) -> tuple[int, float]:
        rng, m = self.rng, self.m
        labels = (model.provider, model.name)
        if rng.random() < self.incidents.get(model.provider, (0, 0.0))[1]:
            # A dead or flaky upstream: the gateway gives up fast and answers 502/503.
            status, seconds = rng.choice((502, 503, 503)), rng.uniform(0.05, 0.3)
        elif rng.random() < 0.01 * self._burst():
            status, seconds = rng.choice((500, 502, 503)), rng.uniform(1, 10)
        else:
            status, seconds = 200, rng.lognormvariate(math.log(model.latency), 0.4)
        ok = status == 200
        self.errors[model.provider][0] += not ok
        self.errors[model.provider][1] += 1
        m.inference.labels(*labels, "success" if ok else "error").inc()
        m.inference_duration.labels(*labels).observe(seconds)
        m.provider_time.labels(model.provider).observe(seconds)
        if not ok:
            return status, seconds
        credits = model.credits_per_1k  # images are billed per picture, not per token
        if model not in IMAGE_MODELS:
            scale = 40 if model.provider == TEST_PROVIDER else 1
            tokens_in = int(rng.lognormvariate(math.log(600), 0.8) * scale)
            tokens_out = int(rng.lognormvariate(math.log(250), 0.7) * scale)
            m.tokens.labels(*labels, "input").inc(tokens_in)
            m.tokens.labels(*labels, "output").inc(tokens_out)
            credits *= (tokens_in + tokens_out) / 1000
        m.credits.labels(*labels).inc(credits)
        self.balances[rng.choice(("trial", "pro", "max", "enterprise"))] -= credits
        self._query("usage_logs", "insert")
        self._query("users", "update")
        return status, seconds + rng.uniform(0.01, 0.05)  # plus the gateway's own overhead

    def _query(self, table: str, operation: str) -> None:
        seconds = self.rng.lognormvariate(math.log(0.006), 0.6) * self._burst() ** 0.5
        self.m.db_queries.labels(table, operation).inc()
        self.m.db_duration.labels(table).observe(seconds)  # the database is slow in a burst, too

    def _burst(self) -> float:
        return 8.0 if self.now < self.burst_until else 1.0  # how much likelier errors are now

    def _drift_business_gauges(self) -> None:
        for gauge, value in self.counts.items():
            if self.rng.random() < 0.1:
                self.counts[gauge] = value = max(0.0, value + self.rng.gauss(0, 0.002 * value))
            gauge.set(round(value))
        for plan, balance in self.balances.items():
            if self.rng.random() < 0.002:
                self.balances[plan] = balance = balance * 1.02  # somebody tops up credits
            self.m.balance.labels(plan).set(round(balance, 2))


def make_app(seed: int | None = None) -> web.Application:
    registry = CollectorRegistry()  # private: no process/GC collectors, nothing global
    simulator = Simulator(Metrics(registry), random.Random(seed))

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    async def simulate(_: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                simulator.tick()
                await asyncio.sleep(TICK_SECONDS)

        task = asyncio.create_task(loop())
        yield
        task.cancel()  # on shutdown (SIGINT/SIGTERM via run_app) stop before the loop closes
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.cleanup_ctx.append(simulate)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Simulated Gatewayz AI API gateway (demo).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=None, help="repeatable traffic")
    args = parser.parse_args()
    # run_app turns SIGINT and SIGTERM into a graceful shutdown that runs cleanup_ctx.
    web.run_app(make_app(args.seed), host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
