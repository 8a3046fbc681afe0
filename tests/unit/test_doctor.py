"""`summary-exporter doctor`: which fields the upstream can fill, its table, JSON and exit codes."""

from __future__ import annotations

import json
from typing import Any

from exporter.catalog import Catalog, load_catalog
from exporter.doctor import _ranked
from tests.exporter_client import answer_sources, command
from tests.fake_prometheus import FakePrometheus

# What the production gateway does not write, of what the built-in catalog reads.
NEVER_WRITTEN = {
    "provider_availability",
    "provider_error_rate",
    "provider_response_time_seconds_sum",
    "provider_response_time_seconds_count",
    "cache_hits_total",
    "cache_misses_total",
    "active_api_keys",
    "subscription_count",
    "trial_active",
    "provider_slow_requests_total",
    "connection_pool_utilization_ratio",
    "connection_pool_errors_total",
}
SIMILAR = ["api_key_lookup_attempts_total", "catalog_cache_hits_total", "redis_up"]


async def doctor(*args: str, **variables: str) -> tuple[int, str, str]:
    """`python -m exporter doctor ARGS` with these EXPORTER_* variables (names unprefixed);
    without reading recording rules unless RECORDED_RULES says so."""
    env = {
        f"EXPORTER_{name}": value for name, value in {"RECORDED_RULES": "off", **variables}.items()
    }
    return await command("doctor", *args, env=env)


def production_writes(fake: FakePrometheus, catalog: Catalog, lookback: str | None = None) -> None:
    """Every metric the catalog reads has 3 series but the never-written ones; any other
    question (the one for similar names) finds SIMILAR."""
    written = {name: 3 for name in catalog.sources() if name not in NEVER_WRITTEN}
    answer_sources(fake, catalog, written, lookback)
    fake.default = [{"metric": {"__name__": name}, "value": [0, "2"]} for name in SIMILAR]


async def test_fields_whose_metrics_do_not_exist_are_named_with_similar_ones_and_exit_1(
    fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    production_writes(fake_prometheus, catalog)
    status, stdout, _ = await doctor(PROMETHEUS_URL=fake_prometheus.url)
    assert status == 1
    lines = stdout.splitlines()
    assert lines[0].startswith(f"Metrics the catalog reads, in {fake_prometheus.url} (no selector)")
    row = next(line for line in lines if "active_api_keys" in line).split()
    assert row == [
        "business.active_api_keys", "active_api_keys", "none", "similar:",
        "api_key_lookup_attempts_total",
    ]  # fmt: skip
    assert "  -> business.active_api_keys cannot have a value" in "\n".join(lines)
    cache = next(line for line in lines if line.split()[:1] == ["cache_hits_total"])
    assert cache.split()[1:] == ["none", "similar:", "catalog_cache_hits_total"]
    assert lines[-1] == (
        "43 of 49 fields can have a value; 6 cannot: providers.slow_requests,"
        " database.pool_utilization, database.pool_errors, business.active_api_keys,"
        " business.active_subscriptions, business.active_trials"
    )
    # Two bounded questions: the catalog's metrics, and names sharing a word with a missing one.
    asked = fake_prometheus.queries()
    assert len(asked) == 2
    assert asked[0] == catalog.existence_query(catalog.sources())
    assert asked[1].startswith('count by (__name__) (last_over_time({__name__=~".*(?:active|api|')
    assert asked[1].endswith(').*"}[1h]))')


async def test_every_field_fillable_exits_0(
    fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_sources(fake_prometheus, catalog)
    status, stdout, _ = await doctor(PROMETHEUS_URL=fake_prometheus.url)
    assert status == 0
    assert stdout.splitlines()[-1] == "All 49 fields can have a value."
    assert len(fake_prometheus.queries()) == 1


async def test_json_gives_the_series_of_every_metric_per_field(
    fake_prometheus: FakePrometheus,
) -> None:
    production_writes(fake_prometheus, load_catalog(selector='job="a"'), "1h30m")
    status, stdout, _ = await doctor(
        "--json", "--lookback", "90m", PROMETHEUS_URL=fake_prometheus.url, SELECTOR="job='a'"
    )
    assert status == 1
    document: dict[str, Any] = json.loads(stdout)
    assert (document["selector"], document["lookback"]) == ('job="a"', "1h30m")
    assert document["fields"]["business.active_trials"] == {
        "metrics": {"trial_active": 0},
        "can_have_value": False,
    }
    assert document["fields"]["providers.avg_response_time_ms"]["can_have_value"] is True
    assert document["missing"]["cache_hits_total"] == ["catalog_cache_hits_total"]
    assert document["cannot_have_value"] == [
        "providers.slow_requests", "database.pool_utilization", "database.pool_errors",
        "business.active_api_keys", "business.active_subscriptions", "business.active_trials",
    ]  # fmt: skip
    assert all('job="a"}[1h30m]' in query for query in fake_prometheus.queries())


async def test_a_bad_setting_exits_2_and_an_unreachable_upstream_3(
    fake_prometheus: FakePrometheus,
) -> None:
    status, stdout, stderr = await doctor(PROMETHEUS_URL=fake_prometheus.url, SELECTOR="job=a")
    assert (status, stdout) == (2, "")
    assert "EXPORTER_SELECTOR" in stderr
    status, _, stderr = await doctor("--lookback", "soon")
    assert status == 2
    assert "usage:" in stderr
    status, stdout, stderr = await doctor(PROMETHEUS_URL="http://127.0.0.1:9")
    assert (status, stdout) == (3, "")
    assert "cannot ask the upstream: http://127.0.0.1:9: cannot connect" in stderr


def test_similar_names_share_the_most_words_then_spell_closest() -> None:
    existing = [
        "catalog_cache_hits_total",
        "gatewayz_pricing_cache_hits_total",
        "cache_size_bytes",
        "redis_keyspace_hits_total",
        "unrelated_total",
    ]
    assert _ranked("cache_hits_total", existing) == [
        "catalog_cache_hits_total",
        "gatewayz_pricing_cache_hits_total",
        "redis_keyspace_hits_total",
    ]
    assert _ranked("trial_active", existing) == []


def test_a_histogram_is_one_suggestion_not_three() -> None:
    existing = [
        "provider_response_duration_seconds_bucket",
        "provider_response_duration_seconds_count",
        "provider_response_duration_seconds_sum",
        "provider_slow_requests_total",
    ]
    assert _ranked("provider_response_time_seconds_sum", existing) == [
        "provider_response_duration_seconds_sum",
        "provider_slow_requests_total",
    ]
