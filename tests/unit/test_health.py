"""Judging a snapshot: the built-in checks' limits, unknowns, the environment and staleness."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from exporter.catalog import Catalog, Unit
from exporter.environment import Environment
from exporter.errors import UpstreamUnreachable
from exporter.health import Health, Status, assess, format_age, format_value, liveness
from exporter.snapshot import AT_LEAST, FieldValue, Snapshot, Value

AT = 1_767_227_400.0
TESTING = Environment("testing", "true")
PRODUCTION = Environment("production", None)
# A quiet, healthy gateway: every field 0 but four healthy providers, a fast p95, Redis up
# and a little event-loop lag.
HEALTHY: dict[str, Value] = {
    "gateway.targets_up": 2,
    "gateway.targets_total": 2,
    "gateway.newest_sample_age_ms": 1000.0,
    "gateway.event_loop_lag_ms": 2.0,
    "providers.total_providers": 4,
    "providers.healthy_providers": 4,
    "http.error_rate": 0.5,
    "http.p95_latency_ms": 120.0,
    "models.inference_error_rate": 1.5,
    "database.pool_utilization": 40.0,
    "database.redis_up": 1,
}


def snapshot_of(catalog: Catalog, synthetic: float | None = 0.0, **values: Value) -> Snapshot:
    """A snapshot of the catalog at AT with `values` ("domain__field") over HEALTHY, else 0."""
    chosen = HEALTHY | {key.replace("__", "."): value for key, value in values.items()}
    fields = {
        (domain, name): FieldValue(
            chosen.get(f"{domain}.{name}", 0),
            AT,
            reason=None if chosen.get(f"{domain}.{name}", 0) is not None else "no series",
        )
        for domain, name, _ in catalog.fields()
    }
    checks = {"synthetic_series": FieldValue(synthetic, AT, reason="empty")}
    return Snapshot(
        instant=AT,
        window="5m",
        fields=fields,
        upstream="http://prom",
        catalog=catalog,
        checks=checks,
    )


def judge(
    catalog: Catalog,
    snapshot: Snapshot | None,
    environment: Environment = TESTING,
    as_of: float = AT,
    max_staleness: float | None = 150.0,
) -> Health:
    return assess(catalog, snapshot, environment, as_of=as_of, max_staleness=max_staleness)


def status_of(health: Health, name: str) -> Status:
    return {check.name: check.status for check in health.checks}[name]


def check_named(health: Health, name: str) -> Any:
    return next(check for check in health.checks if check.name == name)


def test_a_healthy_gateway_is_ok_with_every_check_listed(catalog: Catalog) -> None:
    health = judge(catalog, snapshot_of(catalog))
    assert health.status is Status.OK
    assert [check.name for check in health.checks] == [
        "gateway_targets",
        "gateway_samples",
        "http_error_rate",
        "providers_unavailable",
        "provider_breakers_open",
        "inference_error_rate",
        "missed_credit_deductions",
        "payment_mismatches",
        "pool_utilization",
        "redis_down",
        "event_loop_lag",
        "http_p95_latency",
        "synthetic_series",
        "upstream",
        "snapshot_age",
        "test_mode",
    ]
    assert {check.status for check in health.checks} == {Status.OK}


@pytest.mark.parametrize(
    ("error_rate", "status"),
    [(5.0, Status.OK), (5.01, Status.DEGRADED), (20.0, Status.DEGRADED), (20.5, Status.CRITICAL)],
)
def test_the_http_error_rate_is_degraded_above_5_and_critical_above_20_percent(
    catalog: Catalog, error_rate: float, status: Status
) -> None:
    health = judge(catalog, snapshot_of(catalog, http__error_rate=error_rate))
    assert status_of(health, "http_error_rate") is status
    assert health.status is status


@pytest.mark.parametrize(
    ("unavailable", "status", "display"),
    [
        (0, Status.OK, "0 of 4 (0 %)"),
        (1, Status.DEGRADED, "1 of 4 (25 %)"),
        (2, Status.CRITICAL, "2 of 4 (50 %)"),
    ],
)
def test_any_unavailable_provider_is_degraded_and_half_or_more_critical(
    catalog: Catalog, unavailable: int, status: Status, display: str
) -> None:
    snapshot = snapshot_of(catalog, providers__unavailable_providers=unavailable)
    check = check_named(judge(catalog, snapshot), "providers_unavailable")
    assert (check.status, check.display, check.value) == (status, display, 25.0 * unavailable)


def test_no_providers_at_all_is_unknown_not_a_share_of_zero(catalog: Catalog) -> None:
    snapshot = snapshot_of(catalog, providers__total_providers=0)
    health = judge(catalog, snapshot)
    check = check_named(health, "providers_unavailable")
    assert check.status is Status.UNKNOWN
    assert check.value is None
    assert check.reason == "providers.total_providers is 0 (0 of 0)"
    assert health.status is Status.OK


def test_a_p95_latency_above_2_seconds_is_degraded_never_critical(catalog: Catalog) -> None:
    health = judge(catalog, snapshot_of(catalog, http__p95_latency_ms=60_000.0))
    check = check_named(health, "http_p95_latency")
    assert (check.status, check.display) == (Status.DEGRADED, "60000 ms")
    assert check.threshold == "degraded above 2000 ms"


def test_a_null_field_makes_its_check_unknown_with_the_fields_reason(catalog: Catalog) -> None:
    health = judge(catalog, snapshot_of(catalog, http__error_rate=None))
    check = check_named(health, "http_error_rate")
    assert check.status is Status.UNKNOWN
    assert check.reason == "http.error_rate is null: no series"
    assert check.display == "—"
    assert health.status is Status.OK


def test_synthetic_series_are_critical_in_production_only(catalog: Catalog) -> None:
    snapshot = snapshot_of(catalog, synthetic=20.0)
    in_production = judge(catalog, snapshot, PRODUCTION)
    assert status_of(in_production, "synthetic_series") is Status.CRITICAL
    assert in_production.status is Status.CRITICAL
    in_testing = check_named(judge(catalog, snapshot, TESTING), "synthetic_series")
    assert in_testing.status is Status.OK
    assert in_testing.value == 20.0
    assert in_testing.reason == "would be critical in production; expected here (APP_ENV=testing)"


def test_no_synthetic_series_in_production_is_ok(catalog: Catalog) -> None:
    health = judge(catalog, snapshot_of(catalog, synthetic=0.0), PRODUCTION)
    assert status_of(health, "synthetic_series") is Status.OK


def test_test_mode_in_production_is_critical(catalog: Catalog) -> None:
    health = judge(catalog, snapshot_of(catalog), Environment("production", "yes"))
    check = check_named(health, "test_mode")
    assert (check.status, check.display) == (Status.CRITICAL, "on in production")
    assert health.status is Status.CRITICAL


def test_an_unreachable_upstream_is_critical_with_its_error(catalog: Catalog) -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect: Connection refused")
    fields = {
        (domain, name): FieldValue(None, AT, reason="query failed", error=error)
        for domain, name, _ in catalog.fields()
    }
    snapshot = Snapshot(
        instant=AT, window="5m", fields=fields, upstream="http://prom", catalog=catalog
    )
    health = judge(catalog, snapshot)
    check = check_named(health, "upstream")
    assert (check.status, check.display) == (Status.CRITICAL, "unreachable")
    assert check.reason == "http://prom: cannot connect: Connection refused"
    assert health.status is Status.CRITICAL


def test_a_snapshot_older_than_max_staleness_is_critical(catalog: Catalog) -> None:
    snapshot = snapshot_of(catalog)
    assert status_of(judge(catalog, snapshot, as_of=AT + 150), "snapshot_age") is Status.OK
    old = judge(catalog, snapshot, as_of=AT + 151)
    check = check_named(old, "snapshot_age")
    assert (check.status, check.value, check.display) == (Status.CRITICAL, 151.0, "2 min 31 s")
    assert check.threshold == "critical above 2 min 30 s (EXPORTER_MAX_STALENESS)"


def test_without_a_staleness_limit_there_is_no_age_check(catalog: Catalog) -> None:
    health = judge(catalog, snapshot_of(catalog), max_staleness=None)
    assert "snapshot_age" not in [check.name for check in health.checks]


def test_before_the_first_refresh_health_is_degraded_and_says_why(catalog: Catalog) -> None:
    health = judge(catalog, None)
    assert health.status is Status.DEGRADED
    assert status_of(health, "snapshot_age") is Status.DEGRADED
    assert status_of(health, "upstream") is Status.UNKNOWN
    assert check_named(health, "http_error_rate").reason == "the first refresh has not finished yet"
    assert health.document()["timestamp"] is None


def test_the_document_gives_value_limits_status_and_promql_per_check(catalog: Catalog) -> None:
    document = judge(catalog, snapshot_of(catalog, http__error_rate=10.0)).document()
    assert document["status"] == "degraded"
    assert document["timestamp"] == "2026-01-01T00:30:00Z"
    error_rate = document["checks"]["http_error_rate"]
    assert error_rate == {
        "status": "degraded",
        "value": 10.0,
        "display": "10 %",
        "threshold": "degraded above 5 %, critical above 20 %",
        "limits": {"degraded": {"above": 5.0}, "critical": {"above": 20.0}},
        "promql": [catalog.domains["http"].fields["error_rate"].render("5m")],
        "reason": None,
        "names": [],
        "detail": None,
        "help": catalog.checks["http_error_rate"].help,
    }
    providers = document["checks"]["providers_unavailable"]["promql"]
    names = catalog.checks["providers_unavailable"].names
    assert names is not None
    assert providers == [
        catalog.domains["providers"].fields["unavailable_providers"].render("5m"),
        catalog.domains["providers"].fields["total_providers"].render("5m"),
        names.render("5m"),
    ]


# The checks of the gateway's production signals, at their limits.


@pytest.mark.parametrize(
    ("open_breakers", "status", "display"),
    [
        (0, Status.OK, "0 of 4 (0 %)"),
        (1, Status.DEGRADED, "1 of 4 (25 %)"),
        (2, Status.CRITICAL, "2 of 4 (50 %)"),
    ],
)
def test_any_open_breaker_is_degraded_and_half_or_more_critical(
    catalog: Catalog, open_breakers: int, status: Status, display: str
) -> None:
    snapshot = snapshot_of(catalog, providers__open_circuit_breakers=open_breakers)
    check = check_named(judge(catalog, snapshot), "provider_breakers_open")
    assert (check.status, check.display) == (status, display)


@pytest.mark.parametrize(
    ("check", "field", "value", "status", "display"),
    [
        ("inference_error_rate", "models__inference_error_rate", 10.0, Status.OK, "10 %"),
        ("inference_error_rate", "models__inference_error_rate", 10.01, Status.DEGRADED, "10.01 %"),
        ("inference_error_rate", "models__inference_error_rate", 50.0, Status.DEGRADED, "50 %"),
        ("inference_error_rate", "models__inference_error_rate", 50.5, Status.CRITICAL, "50.5 %"),
        ("missed_credit_deductions", "business__missed_deductions_usd", 0, Status.OK, "0 USD"),
        (
            "missed_credit_deductions",
            "business__missed_deductions_usd",
            0.0001,
            Status.DEGRADED,
            "0.0001 USD",
        ),
        ("payment_mismatches", "business__payment_mismatches", 0, Status.OK, "0"),
        ("payment_mismatches", "business__payment_mismatches", 1, Status.DEGRADED, "1"),
        ("pool_utilization", "database__pool_utilization", 90.0, Status.OK, "90 %"),
        ("pool_utilization", "database__pool_utilization", 90.5, Status.DEGRADED, "90.5 %"),
        ("redis_down", "database__redis_up", 1, Status.OK, "1"),
        ("redis_down", "database__redis_up", 0, Status.DEGRADED, "0"),
        ("event_loop_lag", "gateway__event_loop_lag_ms", 1000.0, Status.OK, "1000 ms"),
        ("event_loop_lag", "gateway__event_loop_lag_ms", 1000.5, Status.DEGRADED, "1000 ms"),
    ],
)
def test_the_production_signals_are_judged_at_their_limits(
    catalog: Catalog, check: str, field: str, value: float, status: Status, display: str
) -> None:
    result = check_named(judge(catalog, snapshot_of(catalog, **{field: value})), check)
    assert (result.status, result.display) == (status, display)


def test_none_of_the_production_signals_is_ever_critical_but_the_breakers_and_errors(
    catalog: Catalog,
) -> None:
    never_critical = [
        "missed_credit_deductions", "payment_mismatches", "pool_utilization", "redis_down",
        "event_loop_lag",
    ]  # fmt: skip
    assert all(catalog.checks[name].critical is None for name in never_critical)


def test_a_signal_the_gateway_does_not_write_is_unknown_with_its_reason(catalog: Catalog) -> None:
    snapshot = snapshot_of(catalog, database__pool_utilization=None)
    check = check_named(judge(catalog, snapshot), "pool_utilization")
    assert check.status is Status.UNKNOWN
    assert check.reason == "database.pool_utilization is null: no series"


def with_names(snapshot: Snapshot, check: str, *named: tuple[str, float]) -> Snapshot:
    answer = FieldValue([name for name, _ in named], AT, series=named)
    return replace(snapshot, names={**snapshot.names, check: answer})


def test_a_check_names_the_providers_behind_it_from_its_names_answer(catalog: Catalog) -> None:
    snapshot = with_names(
        snapshot_of(catalog, providers__open_circuit_breakers=1),
        "provider_breakers_open",
        ("fireworks", 1.0),
    )
    check = check_named(judge(catalog, snapshot), "provider_breakers_open")
    assert (check.status, check.detail, check.names) == (
        Status.DEGRADED, "open: fireworks", ("fireworks",),
    )  # fmt: skip
    assert check.document()["detail"] == "open: fireworks"


def test_a_detail_with_values_shows_each_in_the_checks_unit_and_at_most_five_names(
    catalog: Catalog,
) -> None:
    named = [(f"p{index}", 60.0 - index) for index in range(7)]
    snapshot = with_names(
        snapshot_of(catalog, models__inference_error_rate=55.0), "inference_error_rate", *named
    )
    check = check_named(judge(catalog, snapshot), "inference_error_rate")
    assert check.detail == ("failing: p0 60 %, p1 59 %, p2 58 %, p3 57 %, p4 56 % and 2 more")
    assert check.names == tuple(f"p{index}" for index in range(7))


def test_without_names_in_the_answer_a_check_has_no_detail(catalog: Catalog) -> None:
    snapshot = with_names(snapshot_of(catalog), "provider_breakers_open")
    check = check_named(judge(catalog, snapshot), "provider_breakers_open")
    assert (check.detail, check.names) == (None, ())


@pytest.mark.parametrize(
    ("value", "unit", "shown"),
    [
        (200, Unit.COUNT, "200"),
        (40.00000000000001, Unit.PER_MINUTE, "40 /min"),
        (769.2307692307692, Unit.MS, "769.2 ms"),
        (0.9999999999999999, Unit.PERCENT, "1 %"),
        (54000, Unit.TOKENS, "54000 tokens"),
        (123456.7, None, "123457"),
        (["a", "b"], None, "a, b"),
        ([], None, "none"),
        (None, Unit.MS, "—"),
    ],
)
def test_values_are_rounded_for_people_only_when_shown(
    value: Value, unit: Unit | None, shown: str
) -> None:
    assert format_value(value, unit) == shown


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0.4, "0 s"), (59, "59 s"), (200, "3 min 20 s"), (3600, "1 h"), (90_061, "1 d 1 h")],
)
def test_ages_are_shown_in_the_two_largest_units(seconds: float, shown: str) -> None:
    assert format_age(seconds) == shown


# The gateway's liveness.


@pytest.mark.parametrize(
    ("up", "total", "status", "display"),
    [
        (2, 2, Status.OK, "2 of 2 (100 %)"),
        (1, 2, Status.DEGRADED, "1 of 2 (50 %)"),
        (0, 2, Status.CRITICAL, "0 of 2 (0 %)"),
    ],
)
def test_some_targets_down_is_degraded_and_none_up_is_critical(
    catalog: Catalog, up: int, total: int, status: Status, display: str
) -> None:
    health = judge(
        catalog, snapshot_of(catalog, gateway__targets_up=up, gateway__targets_total=total)
    )
    assert status_of(health, "gateway_targets") is status
    assert check_named(health, "gateway_targets").display == display
    assert health.status is status
    assert health.liveness.status is status


def test_samples_older_than_the_limit_mean_the_gateway_is_down(catalog: Catalog) -> None:
    fresh = judge(catalog, snapshot_of(catalog, gateway__newest_sample_age_ms=120_000.0))
    assert status_of(fresh, "gateway_samples") is Status.OK
    stale = judge(catalog, snapshot_of(catalog, gateway__newest_sample_age_ms=120_001.0))
    assert status_of(stale, "gateway_samples") is Status.CRITICAL
    assert stale.liveness.down
    assert stale.liveness.reason == "gateway_samples 120001 ms"


def test_a_dead_gateway_with_no_traffic_is_critical_not_ok(catalog: Catalog) -> None:
    # Nothing to judge traffic by: the traffic checks are unknown, yet the gateway is down.
    dead = snapshot_of(
        catalog,
        gateway__targets_up=0,
        http__error_rate=None,
        http__p95_latency_ms=None,
        providers__total_providers=0,
    )
    health = judge(catalog, dead)
    assert status_of(health, "http_error_rate") is Status.UNKNOWN
    assert health.status is Status.CRITICAL
    assert health.liveness.document() == {
        "status": "critical",
        "reason": "gateway_targets 0 of 2 (0 %)",
        "checks": {"gateway_targets": "critical", "gateway_samples": "ok"},
    }


def test_liveness_is_unknown_only_when_no_liveness_check_has_a_value(catalog: Catalog) -> None:
    nothing = snapshot_of(
        catalog,
        gateway__targets_up=None,
        gateway__targets_total=None,
        gateway__newest_sample_age_ms=None,
    )
    gateway = liveness(catalog, nothing)
    assert gateway.status is Status.UNKNOWN
    assert gateway.reason == (
        "gateway.targets_up is null: no series; gateway.newest_sample_age_ms is null: no series"
    )
    assert liveness(catalog, None).status is Status.UNKNOWN


def test_liveness_is_the_same_in_the_summary_and_in_health(catalog: Catalog) -> None:
    snapshot = snapshot_of(catalog, gateway__targets_up=1)
    assert liveness(catalog, snapshot) == judge(catalog, snapshot).liveness


# Values that are only lower bounds.


def bounded(catalog: Catalog, key: str, value: float) -> Snapshot:
    snapshot = snapshot_of(catalog)
    fields = dict(snapshot.fields)
    fields[tuple(key.split("."))] = FieldValue(value, AT, bound=AT_LEAST)  # type: ignore[index]
    return replace(snapshot, fields=fields)


def test_a_lower_bound_past_an_upward_limit_crosses_it_for_certain(catalog: Catalog) -> None:
    health = judge(catalog, bounded(catalog, "http.p95_latency_ms", 5000.0))
    p95 = check_named(health, "http_p95_latency")
    assert (p95.status, p95.display, p95.reason) == (Status.DEGRADED, "≥ 5000 ms", None)


def test_a_lower_bound_short_of_an_upward_limit_may_be_past_it(catalog: Catalog) -> None:
    health = judge(catalog, bounded(catalog, "http.p95_latency_ms", 1000.0))
    p95 = check_named(health, "http_p95_latency")
    assert p95.status is Status.UNKNOWN
    assert p95.reason == "≥ 1000 ms is only a lower bound; it may be degraded"


def test_a_lower_bound_past_the_degraded_limit_may_also_be_critical(catalog: Catalog) -> None:
    health = judge(catalog, bounded(catalog, "http.error_rate", 10.0))
    errors = check_named(health, "http_error_rate")
    assert errors.status is Status.DEGRADED
    assert errors.reason == "may be critical: ≥ 10 % is only a lower bound"


def test_an_age_known_only_as_a_lower_bound_is_critical_past_the_limit(catalog: Catalog) -> None:
    health = judge(catalog, bounded(catalog, "gateway.newest_sample_age_ms", 3_600_000.0))
    assert check_named(health, "gateway_samples").display == "≥ 3600000 ms"
    assert health.liveness.status is Status.CRITICAL


def test_a_lower_bound_is_shown_with_at_least() -> None:
    assert format_value(5000.0, Unit.MS, AT_LEAST) == "≥ 5000 ms"
    assert format_value(5000.0, Unit.MS) == "5000 ms"
