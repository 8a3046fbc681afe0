"""The demo's cycle: healthy most of the time, a short incident every few minutes, recovery."""

from __future__ import annotations

import itertools
import math

import pytest
from prometheus_client import CollectorRegistry

from demo.simulation import (
    BREAKER_SUCCESSES_TO_CLOSE,
    BREAKER_TIMEOUT_SECONDS,
    LOAD_PERIOD_SECONDS,
    TICK_SECONDS,
    Schedule,
    Simulation,
)
from tests.demo.conftest import INCIDENT_EVERY, INCIDENT_LENGTH, History, simulate

SEEDS = (1, 2, 3)


def first_incident(seed: int) -> tuple[History, str, float]:
    history = simulate(seed, until=0.0)
    incident = history.simulation.schedule.incident(0)
    return history, incident.provider, incident.start


def breaker(history: History, provider: str) -> dict[str, float | None]:
    return {
        state: history.value("circuit_breaker_current_state", provider=provider, state=state)
        for state in ("closed", "open", "half_open")
    }


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile over (upper bound, cumulative count) pairs."""
    total = buckets[-1][1]
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    raise AssertionError("no +Inf bucket")


def http_buckets(history: History) -> dict[float, float]:
    buckets: dict[float, float] = {}
    for s in history.samples("fastapi_requests_duration_seconds_bucket"):
        bound = float(s.labels["le"])
        buckets[bound] = buckets.get(bound, 0.0) + s.value
    return buckets


@pytest.mark.parametrize("seed", SEEDS)
def test_nothing_is_wrong_before_the_first_incident(seed: int) -> None:
    history, _, start = first_incident(seed)
    history.simulation.advance_to(start)
    assert history.samples("circuit_breaker_current_state") == []
    assert history.samples("gatewayz_missed_credit_deductions_usd_total") == []
    errors = history.total("fastapi_requests_total", status_class="5xx")
    assert errors / history.total("fastapi_requests_total") < 0.01


@pytest.mark.parametrize("seed", SEEDS)
def test_the_incident_opens_the_failing_providers_breaker(seed: int) -> None:
    history, provider, start = first_incident(seed)
    history.simulation.advance_to(start + 2)
    assert breaker(history, provider) == {"closed": 0.0, "open": 1.0, "half_open": None}
    transitions = "circuit_breaker_state_transitions_total"
    assert history.value(transitions, provider=provider, from_state="closed", to_state="open") == 1
    # Only the failing provider's breaker moved: the others still have no series at all.
    others = set(BREAKER_SUCCESSES_TO_CLOSE) - {provider}
    assert all(
        breaker(history, other) == dict.fromkeys(breaker(history, other)) for other in others
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_while_open_the_breaker_refuses_calls_and_the_providers_errors_climb(seed: int) -> None:
    history, provider, start = first_incident(seed)
    history.simulation.advance_to(start)
    errors_before = history.total(
        "model_inference_requests_total", provider=provider, status="error"
    )
    history.simulation.advance_to(start + INCIDENT_LENGTH)
    refused = history.value("circuit_breaker_rejected_requests_total", provider=provider)
    errors = history.total("model_inference_requests_total", provider=provider, status="error")
    successes = history.total("model_inference_requests_total", status="success")
    assert refused is not None
    assert refused > 10
    assert errors - errors_before > 10
    assert successes > 0  # the other providers serve on


@pytest.mark.parametrize("seed", SEEDS)
def test_a_missed_credit_deduction_is_recorded_when_billing_goes_down(seed: int) -> None:
    history, _, _ = first_incident(seed)
    begins, _ = history.simulation.schedule.incident(0).billing_outage
    history.simulation.advance_to(begins)
    assert history.samples("gatewayz_missed_credit_deductions_usd_total") == []
    history.simulation.advance_to(begins + TICK_SECONDS)
    background = history.value(
        "gatewayz_missed_credit_deductions_usd_total", reason="background_task_failure"
    )
    retries = history.value("gatewayz_missed_credit_deductions_usd_total", reason="retry_exhausted")
    assert background is not None
    assert background > 0
    # Each lost deduction is counted three times: two exhausted retry loops, then the task.
    assert retries == pytest.approx(2 * background)
    failures = "gatewayz_streaming_background_task_failures_total"
    assert history.total(failures, failure_type="credit_deduction") >= 1


@pytest.mark.parametrize("seed", SEEDS)
def test_the_bot_flood_is_refused_by_the_ip_rate_limit(seed: int) -> None:
    history, _, start = first_incident(seed)
    history.simulation.advance_to(start)
    before = history.total("rate_limited_requests_total", limit_type="security_ip_tier")
    history.simulation.advance_to(start + INCIDENT_LENGTH)
    during = history.total("rate_limited_requests_total", limit_type="security_ip_tier") - before
    assert during > 10 * before + 50


@pytest.mark.parametrize("seed", SEEDS)
def test_the_breaker_closes_once_it_tries_the_recovered_provider_again(seed: int) -> None:
    history, provider, start = first_incident(seed)
    history.simulation.advance_to(start + BREAKER_TIMEOUT_SECONDS + 5)
    assert breaker(history, provider) == {"closed": 1.0, "open": 0.0, "half_open": 0.0}
    transitions = {
        (s.labels["from_state"], s.labels["to_state"]): s.value
        for s in history.samples("circuit_breaker_state_transitions_total")
    }
    assert transitions == {
        ("closed", "open"): 1,
        ("open", "half_open"): 1,
        ("half_open", "closed"): 1,
    }


def test_a_breaker_still_failing_when_half_open_opens_again() -> None:
    history = simulate(seed=4, until=0.0, every=200.0, length=BREAKER_TIMEOUT_SECONDS + 30)
    incident = history.simulation.schedule.incident(0)
    history.simulation.advance_to(incident.end)
    reopened = history.value(
        "circuit_breaker_state_transitions_total",
        provider=incident.provider,
        from_state="half_open",
        to_state="open",
    )
    assert reopened is not None
    assert reopened >= 1
    assert breaker(history, incident.provider)["open"] == 1


def test_incidents_take_turns_among_the_providers_with_a_breaker() -> None:
    schedule = Schedule(INCIDENT_EVERY, INCIDENT_LENGTH, seed=5)
    incidents = [schedule.incident(n) for n in range(6)]
    assert {i.provider for i in incidents[:3]} == set(BREAKER_SUCCESSES_TO_CLOSE)
    assert [i.provider for i in incidents[3:]] == [i.provider for i in incidents[:3]]
    assert [i.start for i in incidents] == [60.0, 180.0, 300.0, 420.0, 540.0, 660.0]
    assert all(i.end - i.start == INCIDENT_LENGTH for i in incidents)
    assert schedule.at(59.5) is None
    assert schedule.at(60.0) == incidents[0]
    assert schedule.at(80.0) is None


@pytest.mark.parametrize(("every", "length"), [(60.0, 60.0), (60.0, 0.0), (60.0, -1.0)])
def test_an_incident_must_be_shorter_than_its_period(every: float, length: float) -> None:
    with pytest.raises(ValueError, match="incident length"):
        Simulation(CollectorRegistry(), incident_every=every, incident_length=length)


def test_the_same_seed_gives_the_same_history() -> None:
    def values(history: History) -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        return [
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for family in history.registry.collect()
            if not family.name.startswith(("process_", "python_"))
            for s in family.samples
            if not s.name.endswith("_created")
        ]

    first, second = simulate(seed=9, until=100.0), simulate(seed=9, until=100.0)
    assert values(first) == values(second)
    assert values(first) != values(simulate(seed=10, until=100.0))


def test_when_nothing_is_wrong_the_http_p95_stays_well_under_two_seconds() -> None:
    # One full load wave, minute by minute (the demo's summary window), far from any incident.
    history = simulate(seed=6, until=0.0, every=10_000.0, length=1.0)
    for minute in itertools.count(1):
        before = http_buckets(history)
        history.simulation.advance_to(60.0 * minute)
        after = http_buckets(history)
        window = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
        assert histogram_quantile(0.95, window) < 1.5, f"minute {minute}"
        if 60.0 * minute >= LOAD_PERIOD_SECONDS:
            break


@pytest.mark.parametrize("seed", SEEDS)
def test_an_incident_turns_some_but_not_most_requests_into_5xx(seed: int) -> None:
    # Requests for models that only the failing provider serves get 503; the rest fail over.
    history, _, start = first_incident(seed)
    history.simulation.advance_to(start + 2)
    requests_before = history.total("fastapi_requests_total")
    errors_before = history.total("fastapi_requests_total", status_class="5xx")
    history.simulation.advance_to(start + INCIDENT_LENGTH)
    requests = history.total("fastapi_requests_total") - requests_before
    errors = history.total("fastapi_requests_total", status_class="5xx") - errors_before
    assert 0.06 < errors / requests < 0.18
