"""The catalog's `checks:` section: the built-in limits, and how a user's checks are validated."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import yaml

from exporter.catalog import Catalog, parse_catalog
from exporter.errors import CatalogError

FIELDS = {
    "hits": {"query": "sum(hits)", "kind": "integer", "unit": "count", "help": "Hits."},
    "errors": {"query": "sum(errors)", "kind": "integer", "unit": "count", "help": "Errors."},
    "pages": {
        "query": "topk(3, hits)",
        "kind": "labels",
        "label": "page",
        "gauge": "page_hits",
        "unit": "count",
        "help": "Top pages.",
        "no_series_means_zero": True,
    },
}


def with_checks(**checks: dict[str, Any]) -> str:
    return yaml.safe_dump({"domains": {"web": {"fields": FIELDS}}, "checks": checks})


def problem(**checks: dict[str, Any]) -> str:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(with_checks(**checks), "mine.yaml")
    return str(caught.value)


def test_the_built_in_checks_carry_the_documented_limits(catalog: Catalog) -> None:
    limits = {
        name: (
            check.field or "query",
            check.percent_of,
            check.degraded.document() if check.degraded else None,
            check.critical.document() if check.critical else None,
            check.production_only,
            check.liveness,
        )
        for name, check in catalog.checks.items()
    }
    assert limits == {
        "gateway_targets": (
            "gateway.targets_up",
            "gateway.targets_total",
            {"below": 100},
            {"at_most": 0},
            False,
            True,
        ),
        "gateway_samples": (
            "gateway.newest_sample_age_ms", None, None, {"above": 120_000}, False, True,
        ),
        "http_error_rate": ("http.error_rate", None, {"above": 5}, {"above": 20}, False, False),
        "providers_unavailable": (
            "providers.unavailable_providers",
            "providers.total_providers",
            {"above": 0},
            {"at_least": 50},
            False,
            False,
        ),
        "provider_breakers_open": (
            "providers.open_circuit_breakers",
            "providers.total_providers",
            {"above": 0},
            {"at_least": 50},
            False,
            False,
        ),
        "inference_error_rate": (
            "models.inference_error_rate", None, {"above": 10}, {"above": 50}, False, False,
        ),
        "missed_credit_deductions": (
            "business.missed_deductions_usd", None, {"above": 0}, None, False, False,
        ),
        "payment_mismatches": (
            "business.payment_mismatches", None, {"above": 0}, None, False, False,
        ),
        "pool_utilization": ("database.pool_utilization", None, {"above": 90}, None, False, False),
        "redis_down": ("database.redis_up", None, {"at_most": 0}, None, False, False),
        "event_loop_lag": ("gateway.event_loop_lag_ms", None, {"above": 1000}, None, False, False),
        "http_p95_latency": ("http.p95_latency_ms", None, {"above": 2000}, None, False, False),
        "synthetic_series": ("query", None, None, {"above": 0}, True, False),
    }  # fmt: skip


def test_the_synthetic_series_check_counts_exactly_what_the_self_test_generator_wrote(
    catalog: Catalog,
) -> None:
    promql = catalog.checks["synthetic_series"].answer_spec().render("5m")
    selectors = re.findall(r"\{[^}]*\}", promql)
    # A 4xx on the generator's old path is a real request to a route that no longer exists.
    assert selectors == [
        '{provider="test"}',
        '{model="test-model"}',
        '{path="/api/metrics/test",status_code!~"4.."}',
    ]
    assert "[5m:1m]" in promql
    assert '"$1"' in promql  # the escaped $$1 of the template, for label_replace


def test_a_catalog_without_checks_is_valid_and_has_none() -> None:
    document = yaml.safe_dump({"domains": {"web": {"fields": FIELDS}}})
    assert parse_catalog(document, "mine.yaml").checks == {}


def test_limits_below_and_at_most_point_downwards() -> None:
    catalog = parse_catalog(
        with_checks(
            up={
                "help": "h",
                "field": "web.errors",
                "percent_of": "web.hits",
                "degraded": {"below": 100},
                "critical": {"at_most": 0},
            }
        ),
        "mine.yaml",
    )
    below, at_most = catalog.checks["up"].degraded, catalog.checks["up"].critical
    assert below is not None
    assert at_most is not None
    assert (below.crossed_by(100), below.crossed_by(99.9), below.upward) == (False, True, False)
    assert (at_most.crossed_by(0.1), at_most.crossed_by(0)) == (False, True)
    assert (below.document(), at_most.document()) == ({"below": 100}, {"at_most": 0})


def test_limits_are_compared_strictly_above_or_at_least() -> None:
    catalog = parse_catalog(
        with_checks(
            errors={"help": "h", "field": "web.errors", "degraded": {"above": 5}},
            share={
                "help": "h",
                "field": "web.errors",
                "percent_of": "web.hits",
                "critical": {"at_least": 50},
            },
        ),
        "mine.yaml",
    )
    above = catalog.checks["errors"].degraded
    at_least = catalog.checks["share"].critical
    assert above is not None
    assert at_least is not None
    assert (above.crossed_by(5), above.crossed_by(5.01)) == (False, True)
    assert (at_least.crossed_by(49.9), at_least.crossed_by(50)) == (False, True)


@pytest.mark.parametrize(
    ("check", "message"),
    [
        ({"help": "h", "degraded": {"above": 1}}, "exactly one of `field`"),
        (
            {"help": "h", "field": "web.hits", "query": "sum(x)", "degraded": {"above": 1}},
            "exactly one of `field`",
        ),
        ({"help": "h", "field": "web.hits"}, "give `degraded`, `critical` or both"),
        (
            {"help": "h", "field": "web.hits", "degraded": {"above": 1, "at_least": 2}},
            "exactly one of `above`, `at_least`, `below` or `at_most`",
        ),
        (
            {"help": "h", "field": "web.hits", "degraded": {"above": 9}, "critical": {"above": 1}},
            "the degraded limit is above the critical one",
        ),
        (
            {"help": "h", "field": "web.hits", "degraded": {"below": 1}, "critical": {"below": 9}},
            "the degraded limit is below the critical one",
        ),
        (
            {"help": "h", "field": "web.hits", "degraded": {"below": 9}, "critical": {"above": 9}},
            "point in different directions",
        ),
        (
            {"help": "h", "query": "sum(x)", "percent_of": "web.hits", "critical": {"above": 1}},
            "`percent_of` applies to field checks",
        ),
        (
            {"help": "h", "field": "web.hits", "unit": "ms", "critical": {"above": 1}},
            "['unit'] apply to query checks",
        ),
        (
            {"help": "h", "query": "count(x[$windw])", "critical": {"above": 0}},
            "unknown placeholders ['windw']",
        ),
        ({"help": "h", "field": "hits", "critical": {"above": 0}}, "string should match pattern"),
        ({"help": "h", "field": "web.hits", "critical": {"above": math.inf}}, "finite number"),
        (
            {"help": "h", "field": "web.hits", "critical": {"abve": 1}},
            "Extra inputs are not permitted",
        ),
    ],
)
def test_an_invalid_check_names_the_file_and_the_check(check: dict[str, Any], message: str) -> None:
    text = problem(broken=check)
    assert text.startswith("catalog mine.yaml: checks.broken")
    assert message.lower() in text.lower()


def test_a_check_must_read_an_existing_numeric_field() -> None:
    missing = problem(broken={"help": "h", "field": "web.nope", "critical": {"above": 0}})
    assert "checks.broken: web.nope is not a field of the catalog" in missing
    listed = problem(broken={"help": "h", "field": "web.pages", "critical": {"above": 0}})
    assert "checks.broken: web.pages is a list, not a number" in listed
    share = problem(
        broken={"help": "h", "field": "web.hits", "percent_of": "db.x", "critical": {"above": 0}}
    )
    assert "db.x is not a field of the catalog" in share
