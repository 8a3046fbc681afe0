"""An AI gateway's traffic in simulated time, written to the metrics as the real gateway writes it.

Healthy most of the time; every `incident_every` seconds an incident of `incident_length`
seconds: one provider's upstream fails, its circuit breaker opens (and stays open for the
gateway's 60 s before it tries again), its inference errors climb, requests for models only it
serves are answered 503, a bot flood is refused by the IP rate limit, and halfway through, the
billing database times out and a streamed completion goes unbilled.

The simulation advances in fixed ticks of simulated time (`advance_to`), so one seed gives one
history whatever the wall clock does; tests drive the clock directly.

Where the gateway's code records something in a surprising way, the simulation does the same,
because that is what a user of the real gateway sees:
- a keyed non-streaming completion is recorded twice in model_inference_requests_total,
  model_inference_duration_seconds and tokens_used_total (by the dispatcher and again by the
  chat route), credits once; a streamed or anonymous one once;
- an attempt refused by an open breaker counts as an inference error of that provider (in the
  non-streaming failover loop only, with no duration);
- a streamed completion whose deduction fails is counted three times in the missed-deduction
  counter (two exhausted retry loops, then the background task's failure);
- the security middleware's 429s never reach the HTTP metrics; a route's own 429s do.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import deque
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from demo.metrics import APP_NAME, GatewayMetrics

TICK_SECONDS = 0.5
BASE_RPS = 40.0  # the load wave swings it between ~16 and ~64 requests per second
LOAD_PERIOD_SECONDS = 240.0
CHAT_PATH = "/v1/chat/completions"

# The gateway's breaker settings: 5 consecutive failures, or at least half of at least 10
# calls in 60 s, open it; after 60 s the next call is let through (half open); that many
# successes close it, 2 failures open it again.
BREAKER_SUCCESSES_TO_CLOSE = {"openrouter": 1, "groq": 2, "together": 2}
BREAKER_FAILURES_TO_OPEN = 5
BREAKER_HALF_OPEN_FAILURES = 2
BREAKER_TIMEOUT_SECONDS = 60.0
BREAKER_WINDOW_SECONDS = 60.0
BREAKER_MIN_CALLS, BREAKER_FAILURE_RATE = 10, 0.5
# Providers whose client records provider_response_duration_seconds.
TIMED_PROVIDERS = frozenset({"openrouter", "groq", "cerebras"})
UPSTREAM_MODEL_COUNTS = {
    "openrouter": 339,
    "together": 187,
    "fireworks": 74,
    "groq": 22,
    "cerebras": 8,
}

BILLING_OUTAGE_SECONDS = 3.0
# What deducting credits asks the database (the queries the gateway times, by table).
DEDUCTION_QUERIES = (
    ("api_keys_new", "select"),
    ("users", "select"),
    ("users", "rpc_atomic_deduct"),
)
DEDUCTION_RETRIES = 3  # per deduction call; a streamed completion's background task makes two
EVENT_LOOP_LAG_EVERY = 5.0


@dataclass(frozen=True)
class Model:
    name: str
    providers: tuple[str, ...]  # the failover chain, first choice first
    weight: float  # share of chat requests
    latency: float  # median seconds of a non-streaming completion
    usd_per_1k_tokens: float | None  # None: no pricing data, billed at the default price


DEFAULT_USD_PER_1K_TOKENS = 0.02
MODELS = (
    Model("openai/gpt-4o-mini", ("openrouter",), 14, 0.5, 0.0004),
    Model("anthropic/claude-3.5-sonnet", ("openrouter",), 6, 0.8, 0.009),
    Model("google/gemini-2.0-flash-001", ("openrouter",), 4, 0.4, 0.0003),
    Model("nousresearch/hermes-3-llama-3.1-405b", ("openrouter",), 2, 0.9, None),
    Model("llama-3.1-8b-instant", ("groq",), 24, 0.2, 0.00006),
    Model("Qwen/Qwen2.5-72B-Instruct-Turbo", ("together",), 14, 0.5, 0.0012),
    Model("mistralai/Mixtral-8x7B-Instruct-v0.1", ("together",), 10, 0.4, 0.0006),
    Model("meta-llama/llama-3.3-70b-instruct", ("groq", "together", "openrouter"), 10, 0.3, 0.0007),
    Model("deepseek-ai/DeepSeek-V3", ("together", "fireworks"), 6, 0.7, 0.00125),
    Model("llama3.1-8b", ("cerebras", "groq"), 6, 0.15, 0.0001),
    Model("accounts/fireworks/models/mixtral-8x22b-instruct", ("fireworks",), 4, 0.6, 0.0012),
)
MODEL_CUMULATIVE_WEIGHTS = list(itertools.accumulate(model.weight for model in MODELS))
STREAMED_SHARE = 0.06  # of chat requests
ANONYMOUS_SHARE = 0.08  # of chat requests; they carry no key and pay nothing
TRIAL_SHARE = 0.25  # of keyed requests; deducted at 0 USD

SESSION_PATH = "/v1/chat/sessions/{id}"  # a numeric id each time; the middleware normalises it
# (method, path, weight).
ENDPOINTS = (
    ("POST", CHAT_PATH, 40.0),
    ("GET", "/health", 30.0),
    ("GET", "/v1/models", 16.0),
    ("GET", "/user/balance", 8.0),
    ("GET", SESSION_PATH, 5.0),
    # Scanners: an ordinary 404 each, /api/metrics/test included (the self-test generator that
    # once answered there was deleted from the gateway).
    ("GET", "/.env", 0.3),
    ("GET", "/wp-login.php", 0.3),
    ("GET", "/.git/config", 0.2),
    ("POST", "/api/metrics/test", 0.05),
)
ENDPOINT_CUMULATIVE_WEIGHTS = list(itertools.accumulate(weight for _, _, weight in ENDPOINTS))
ROUTED_PATHS = frozenset({CHAT_PATH, "/health", "/v1/models", "/user/balance", SESSION_PATH})
# The admission gate leaves these alone.
UNGATED_PATHS = frozenset({"/health", "/metrics", "/ready"})


def normalise_path(path: str) -> str:
    """The path label the gateway's middleware writes for a request path."""
    parts = []
    for part in path.split("/"):
        if not part:
            continue
        part = part.split("?")[0]
        hexadecimal = all(c in "0123456789abcdef" for c in part.lower())
        uuid_like = len(part) == 36 and all(c in "0123456789abcdef-" for c in part.lower())
        identifier = part.isdigit() or uuid_like or (len(part) > 8 and hexadecimal)
        parts.append("{id}" if identifier else part)
    return "/" + "/".join(parts[:6])


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 200 <= status < 300 or 400 <= status < 600 else "other"


@dataclass(frozen=True)
class Incident:
    provider: str
    start: float
    end: float

    @property
    def billing_outage(self) -> tuple[float, float]:
        """When the billing database times out: from the middle of the incident, briefly."""
        begins = self.start + (self.end - self.start) / 2
        return begins, min(self.end, begins + BILLING_OUTAGE_SECONDS)


class Schedule:
    """Incident n runs from (n + 1/2) x every for `length` seconds; providers take turns."""

    def __init__(self, every: float, length: float, seed: int | None) -> None:
        if not 0 < length < every:
            raise ValueError("the incident length must be positive and shorter than the period")
        self.every, self.length = every, length
        self.providers = sorted(BREAKER_SUCCESSES_TO_CLOSE)
        random.Random(seed).shuffle(self.providers)

    def incident(self, n: int) -> Incident:
        start = (n + 0.5) * self.every
        return Incident(self.providers[n % len(self.providers)], start, start + self.length)

    def at(self, t: float) -> Incident | None:
        current = self.incident(max(0, math.floor(t / self.every - 0.5)))
        return current if current.start <= t < current.end else None


class Breaker:
    """One provider's circuit breaker: the gateway's state machine, and the metrics it writes."""

    def __init__(self, provider: str, metrics: GatewayMetrics) -> None:
        self.provider, self.m = provider, metrics
        self.state = "closed"
        self.failures = self.successes = 0
        self.opened_at = 0.0
        self.recent: deque[tuple[float, bool]] = deque()

    def admits(self, now: float) -> bool:
        if self.state == "open":
            if now - self.opened_at < BREAKER_TIMEOUT_SECONDS:
                self.m.breaker_rejected.labels(self.provider).inc()
                return False
            self._move(now, "half_open")
        return True

    def record(self, now: float, ok: bool) -> None:
        self.recent.append((now, ok))
        while self.recent and self.recent[0][0] <= now - BREAKER_WINDOW_SECONDS:
            self.recent.popleft()
        counter = self.m.breaker_successes if ok else self.m.breaker_failures
        counter.labels(self.provider, self.state).inc()
        if ok:
            self.failures, self.successes = 0, self.successes + 1
            if (
                self.state == "half_open"
                and self.successes >= BREAKER_SUCCESSES_TO_CLOSE[self.provider]
            ):
                self._move(now, "closed")
            return
        self.failures, self.successes = self.failures + 1, 0
        if self.state == "half_open":
            if self.failures >= BREAKER_HALF_OPEN_FAILURES:
                self._move(now, "open")
        elif self.failures >= BREAKER_FAILURES_TO_OPEN or (
            len(self.recent) >= BREAKER_MIN_CALLS
            and sum(not ok for _, ok in self.recent) / len(self.recent) >= BREAKER_FAILURE_RATE
        ):
            self._move(now, "open")

    def _move(self, now: float, state: str) -> None:
        self.m.breaker_transitions.labels(self.provider, self.state, state).inc()
        # Only a transition writes the gauge: a breaker that never moved has no series.
        self.m.breaker_state.labels(self.provider, state).set(1)
        self.m.breaker_state.labels(self.provider, self.state).set(0)
        if state == "open":
            self.opened_at = now
        if state != "open":
            self.failures = 0
        self.state, self.successes = state, 0


@dataclass
class Redis:
    """What the gateway reads from Redis INFO on every scrape."""

    uptime: float = 1_382_400.0
    commands: float = 48_213_907.0
    hits: float = 9_114_382.0
    misses: float = 1_208_445.0
    expired: float = 402_911.0
    connections: float = 88_410.0
    memory: float = 52.0e6
    keys: float = 15_120.0
    clients: float = 14.0


class Simulation:
    """The gateway's traffic, tick by tick, written to `registry` as the gateway writes it."""

    def __init__(
        self,
        registry: CollectorRegistry,
        seed: int | None = None,
        incident_every: float = 300.0,
        incident_length: float = 60.0,
    ) -> None:
        self.m = GatewayMetrics(registry)
        self.rng = random.Random(seed)
        self.schedule = Schedule(incident_every, incident_length, seed)
        self.clock = 0.0
        self.load = 1.0
        self.incident: Incident | None = None
        self.billing_down = False
        self.breakers = {p: Breaker(p, self.m) for p in BREAKER_SUCCESSES_TO_CLOSE}
        self.redis = Redis()
        self.default_priced: set[str] = set()
        self.busy: dict[tuple[str, str], float] = {}  # seconds spent this tick, per route
        self.next_lag_reading = 0.0
        for gateway, count in UPSTREAM_MODEL_COUNTS.items():
            self.m.gateway_models.labels(gateway).set(count)
        self.m.concurrency_queued.set(0)
        self.refresh_redis_gauges()

    def advance_to(self, t: float) -> None:
        """Runs every tick that starts before `t` (seconds of simulated time)."""
        while self.clock + TICK_SECONDS <= t:
            self._tick()
            self.clock += TICK_SECONDS

    def refresh_redis_gauges(self) -> None:
        """What the gateway's /metrics does before it answers: read Redis INFO into gauges."""
        r, m = self.redis, self.m
        m.redis_up.set(1)
        m.redis_memory_used.set(round(r.memory))
        m.redis_memory_max.set(0)  # a managed Redis without maxmemory reports 0
        m.redis_clients.set(round(r.clients))
        m.redis_uptime.set(round(r.uptime))
        m.redis_commands.set(round(r.commands))
        m.redis_hits.set(round(r.hits))
        m.redis_misses.set(round(r.misses))
        m.redis_expired.set(round(r.expired))
        m.redis_evicted.set(0)
        m.redis_connections.set(round(r.connections))
        m.redis_db_keys.labels("db0").set(round(r.keys))

    # --- one tick ---------------------------------------------------------------------------

    def _tick(self) -> None:
        rng, now = self.rng, self.clock
        self.incident = self.schedule.at(now)
        phase = 2 * math.pi * now / LOAD_PERIOD_SECONDS
        self.load = max(0.1, 1 + 0.6 * math.sin(phase) + rng.gauss(0, 0.05))
        mean = BASE_RPS * self.load * TICK_SECONDS
        arrivals = max(0, round(rng.gauss(mean, math.sqrt(mean))))  # about Poisson
        self.busy = dict.fromkeys(self.busy, 0.0)  # every route seen so far, idle until used
        self.billing_down, outage_begins = self._billing_outage()
        for method, path, _ in rng.choices(
            ENDPOINTS, cum_weights=ENDPOINT_CUMULATIVE_WEIGHTS, k=arrivals
        ):
            self._request(method, path)
        if outage_begins:
            # At least one paid streamed completion ends in the outage's first tick.
            for _ in range(10):
                if self._chat(self._trace(), streamed=True, keyed=True, trial=False):
                    break
        self._background()
        # Little's law: requests in flight = arrival rate x time in the gateway.
        gated = 0.0
        for (method, path), seconds in self.busy.items():
            self.m.in_progress.labels(APP_NAME, method, path).set(round(seconds / TICK_SECONDS))
            gated += 0.0 if path in UNGATED_PATHS else seconds
        self.m.concurrency_active.set(round(gated / TICK_SECONDS))

    def _background(self) -> None:
        rng, m = self.rng, self.m
        flood = 6.0 if self.incident else 0.02  # refused by the IP tier, per tick
        refused = _poisson(rng, flood)
        if refused:
            m.rate_limited.labels("security_ip_tier").inc(refused)
        if rng.random() < TICK_SECONDS / 45:  # a Stripe payment checked against its plan
            m.payment_checks.labels("within_tolerance" if rng.random() < 0.05 else "matched").inc()
        if self.clock >= self.next_lag_reading:
            lag = rng.lognormvariate(math.log(0.0004), 0.5) * (20 if self.incident else 1)
            m.event_loop_lag.set(lag)
            self.next_lag_reading += EVENT_LOOP_LAG_EVERY
        r = self.redis
        r.uptime += TICK_SECONDS
        r.expired += _poisson(rng, 0.4)
        r.connections += _poisson(rng, 0.05)
        r.memory = min(64e6, max(40e6, r.memory + rng.gauss(0, 40e3)))
        r.keys = max(10_000.0, r.keys + rng.gauss(0, 8))
        r.clients = min(24.0, max(8.0, r.clients + rng.choice((-1, 0, 0, 0, 1))))

    def _billing_outage(self) -> tuple[bool, bool]:
        """Whether the billing database is down in this tick, and whether it went down in it."""
        if self.incident is None:
            return False, False
        begins, ends = self.incident.billing_outage
        tick_ends = self.clock + TICK_SECONDS
        return begins < tick_ends and self.clock < ends, self.clock <= begins < tick_ends

    # --- requests ---------------------------------------------------------------------------

    def _request(self, method: str, path: str) -> None:
        rng, trace = self.rng, self._trace()
        if path == CHAT_PATH:
            keyed = rng.random() >= ANONYMOUS_SHARE
            self._chat(trace, rng.random() < STREAMED_SHARE, keyed, rng.random() < TRIAL_SHARE)
        elif path == "/health":
            self._record(method, path, 200, rng.uniform(0.002, 0.008), 0, 120, trace)
        elif path == "/v1/models":
            self._models(trace)
        elif path in ROUTED_PATHS:
            self._keyed_read(method, path, trace)
        else:
            self._record(method, path, 404, rng.uniform(0.002, 0.008), 0, 22, trace)

    def _models(self, trace: str) -> None:
        rng, m = self.rng, self.m
        gateway = "openrouter" if rng.random() < 0.1 else "all"
        seconds = rng.lognormvariate(math.log(0.012), 0.4)
        if rng.random() < 0.95:
            m.catalog_hits.labels(gateway).inc()
            m.catalog_operations.labels("get", "l1", "hit").inc()
            self.redis.hits += 1
        else:
            m.catalog_misses.labels(gateway).inc()
            m.catalog_operations.labels("get", "l1", "miss").inc()
            m.catalog_size.labels(gateway).set(round(rng.gauss(2.1e6, 5e4)))
            self.redis.misses += 1
            seconds += rng.uniform(0.15, 0.5)
        self.redis.commands += 2
        self._record("GET", "/v1/models", 200, seconds, 0, round(rng.gauss(41_000, 900)), trace)

    def _keyed_read(self, method: str, path: str, trace: str) -> None:
        rng = self.rng
        if path == SESSION_PATH:
            path = path.replace("{id}", str(rng.randint(1000, 99999)))
        status, seconds = self._authenticate()
        if status == 200:
            seconds += rng.lognormvariate(math.log(0.03), 0.5)
            if rng.random() < 0.001:
                status = 500
        self._record(method, path, status, seconds, 0, 310 if status == 200 else 90, trace)

    def _authenticate(self) -> tuple[int, float]:
        """A keyed request's way past authentication and the per-key limit: (status, seconds)."""
        rng, m = self.rng, self.m
        seconds = rng.uniform(0.002, 0.01)
        self.redis.commands += 3  # the rate limiter's counters
        if rng.random() < 0.02:
            return 401, seconds
        if rng.random() < 0.12:  # not in the user cache
            m.key_lookups.labels("success").inc()
            seconds += self._query("api_keys_new", "select") + self._query("users", "select")
            self.redis.misses += 1
        else:
            self.redis.hits += 1
        if rng.random() < 0.005 + 0.03 * max(0.0, self.load - 1.2):
            return 429, seconds
        return 200, seconds

    def _chat(self, trace: str, streamed: bool, keyed: bool, trial: bool) -> bool:
        """One chat completion request; whether a completion was served."""
        rng, m = self.rng, self.m
        status, seconds = self._authenticate() if keyed else (200, rng.uniform(0.002, 0.01))
        sent = round(rng.lognormvariate(math.log(2200), 0.7))
        if status != 200:
            self._record("POST", CHAT_PATH, status, seconds, sent, 90, trace)
            return False
        if keyed:
            m.key_tracked.labels("authenticated").inc()
        else:
            m.key_untracked.labels("anonymous").inc()
        model = rng.choices(MODELS, cum_weights=MODEL_CUMULATIVE_WEIGHTS)[0]
        provider, attempts_seconds, refused = self._call_upstream(model, streamed, keyed, trace)
        seconds += attempts_seconds
        if provider is None:
            self._record("POST", CHAT_PATH, 503 if refused else 502, seconds, sent, 160, trace)
            return False
        tokens_in = round(rng.lognormvariate(math.log(600), 0.8))
        tokens_out = round(rng.lognormvariate(math.log(250), 0.7))
        cost = self._price(model, tokens_in + tokens_out)
        labels, exemplar = (provider, model.name), {"trace_id": trace}
        if streamed:
            first_chunk = attempts_seconds + rng.lognormvariate(math.log(0.3), 0.5)
            m.first_chunk.labels(*labels).observe(first_chunk)
            stream_seconds = first_chunk + tokens_out / rng.uniform(60, 140)
            seconds += stream_seconds - attempts_seconds
            if rng.random() < 0.01:
                m.chunks_dropped.labels(*labels).inc()
            source = "provider" if provider != "together" or rng.random() < 0.7 else "tiktoken"
            m.token_count_source.labels(*labels, source).inc()
            recordings = [stream_seconds]
        else:
            recordings = [attempts_seconds]
            if keyed:  # the keyed dispatcher records it, then the chat route again
                recordings.append(attempts_seconds + rng.uniform(0.001, 0.004))
        for duration in recordings:
            m.inference.labels(*labels, "success").inc(1, exemplar)
            m.inference_duration.labels(*labels).observe(duration, exemplar)
            m.tokens.labels(*labels, "input").inc(tokens_in, exemplar)
            m.tokens.labels(*labels, "output").inc(tokens_out, exemplar)
        m.credits.labels(*labels).inc(cost, exemplar)
        if keyed:
            self._deduct(0.0 if trial else cost, streamed)
        if rng.random() < 0.001:
            status = 500  # an unhandled exception after the completion
        received = 0 if streamed else round(rng.lognormvariate(math.log(1800), 0.6))
        self._record("POST", CHAT_PATH, status, seconds, sent, received, trace)
        return True

    def _call_upstream(
        self, model: Model, streamed: bool, keyed: bool, trace: str
    ) -> tuple[str | None, float, bool]:
        """Tries the model's providers in turn: (the one that answered, seconds, last refused)."""
        rng, m, now = self.rng, self.m, self.clock
        seconds, refused = 0.0, False
        # Only the keyed non-streaming failover loop counts a failed attempt as an inference.
        counted = keyed and not streamed
        for provider in model.providers:
            breaker = self.breakers.get(provider)
            if breaker is not None and not breaker.admits(now):
                refused = True
                if counted:
                    m.inference.labels(provider, model.name, "error").inc(1, {"trace_id": trace})
                continue
            failed = rng.random() < self._failure_probability(provider)
            if failed:
                call = rng.uniform(0.05, 0.4)
            elif streamed:
                call = rng.lognormvariate(math.log(0.2), 0.5)  # until the stream is open
            else:
                call = rng.lognormvariate(math.log(model.latency), 0.35)
            seconds += call
            if provider in TIMED_PROVIDERS:
                outcome = "error" if failed else "success"
                m.provider_call.labels(provider, model.name, outcome).observe(call)
            if breaker is not None:
                breaker.record(now, not failed)
            if not failed:
                return provider, seconds, False
            refused = False
            if counted:
                m.inference.labels(provider, model.name, "error").inc(1, {"trace_id": trace})
        return None, seconds, refused

    def _failure_probability(self, provider: str) -> float:
        if self.incident is not None and self.incident.provider == provider:
            return 0.9
        return 0.002

    def _price(self, model: Model, tokens: int) -> float:
        m = self.m
        if self.rng.random() < 0.97:
            m.pricing_hits.labels("model_pricing").inc()
        else:
            m.pricing_misses.labels("model_pricing").inc()
        price = model.usd_per_1k_tokens
        if price is None:
            self.default_priced.add(model.name)
            m.default_priced_models.set(len(self.default_priced))
            m.default_priced.labels(model.name).inc()
            price = DEFAULT_USD_PER_1K_TOKENS
        return price * tokens / 1000

    def _deduct(self, cost: float, streamed: bool) -> None:
        rng, m = self.rng, self.m
        streaming = "true" if streamed else "false"
        if streamed and cost > 0 and self.billing_down:
            self._lose_deduction(cost)
            return
        if cost > 0:
            for table, operation in DEDUCTION_QUERIES:
                self._query(table, operation)
            m.deducted_usd.labels("success", CHAT_PATH).inc(cost)
        m.deductions.labels("success", CHAT_PATH, streaming).inc()
        latency = rng.lognormvariate(math.log(0.06 if streamed else 0.004), 0.5)
        m.deduction_latency.labels(CHAT_PATH, streaming).observe(latency)

    def _lose_deduction(self, cost: float) -> None:
        """A streamed completion's background deduction, every retry timing out."""
        m = self.m
        for _ in range(2):  # the background task calls the deduction twice
            for attempt in range(1, DEDUCTION_RETRIES + 1):
                m.deductions.labels("retried", CHAT_PATH, "true").inc()
                m.deducted_usd.labels("retried", CHAT_PATH).inc(cost)
                if attempt > 1:
                    m.deduction_retries.labels(str(attempt), CHAT_PATH).inc()
            m.deductions.labels("failed", CHAT_PATH, "true").inc()
            m.deducted_usd.labels("failed", CHAT_PATH).inc(cost)
            m.deduction_retries.labels(str(DEDUCTION_RETRIES), CHAT_PATH).inc()
            m.deduction_latency.labels(CHAT_PATH, "true").observe(self.rng.uniform(3.5, 4.5))
            m.missed_usd.labels("retry_exhausted").inc(cost)
        m.background_failures.labels("credit_deduction", CHAT_PATH).inc()
        m.missed_usd.labels("background_task_failure").inc(cost)

    def _query(self, table: str, operation: str) -> float:
        seconds = self.rng.lognormvariate(math.log(0.006), 0.6)
        self.m.db_queries.labels(table, operation).inc()
        self.m.db_duration.labels(table).observe(seconds)
        return seconds

    def _record(
        self,
        method: str,
        raw_path: str,
        status: int,
        seconds: float,
        sent: int,
        received: int,
        trace: str,
    ) -> None:
        """What the observability middleware writes for one request."""
        m, path, exemplar = self.m, normalise_path(raw_path), {"trace_id": trace}
        code, group = str(status), status_class(status)
        m.request_size.labels(APP_NAME, method, path).observe(sent)
        m.response_size.labels(APP_NAME, method, path).observe(received)
        m.request_duration.labels(APP_NAME, method, path).observe(seconds, exemplar)
        m.legacy_duration.labels(method, path).observe(seconds, exemplar)
        m.requests.labels(APP_NAME, method, path, code, group).inc()
        m.legacy_requests.labels(method, path, code, group).inc()
        self.busy[(method, path)] = self.busy.get((method, path), 0.0) + seconds
        self.redis.commands += 1

    def _trace(self) -> str:
        return f"{self.rng.getrandbits(128):032x}"


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw by inversion: small means only, bounded in its loop."""
    threshold, k, p = math.exp(-mean), 0, rng.random()
    while p > threshold and k < 1000:
        p *= rng.random()
        k += 1
    return k
