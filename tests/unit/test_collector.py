"""The gauges and self-metrics on /metrics, built from the exporter's state on every scrape."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from exporter.catalog import Catalog, load_catalog
from exporter.collector import EnvironmentCollector, RefreshMetrics, SummaryCollector
from exporter.environment import Environment
from exporter.errors import QueryRejected, UpstreamError, UpstreamTimeout
from exporter.prometheus import PrometheusClient
from exporter.refresher import Evaluator, Refresher, RefreshOutcome
from exporter.snapshot import FieldValue, Snapshot
from tests.conftest import LIMITS

AT = 1_767_227_400.0
# What Prometheus asks for when it scrapes: OpenMetrics, where `_created` series would show.
generate_openmetrics, _ = choose_encoder("application/openmetrics-text; version=1.0.0")


def outcome(duration: float, errors: dict[str, UpstreamError] | None = None) -> RefreshOutcome:
    fields = {
        (domain, f"field_{index}"): FieldValue(None, AT, error=error)
        for index, (domain, error) in enumerate((errors or {}).items())
    }
    snapshot = Snapshot(
        instant=AT,
        window="5m",
        fields=fields,
        upstream="u",
        catalog=load_catalog(),
        answered_by={"http://a": 27},
    )
    return RefreshOutcome(snapshot, duration)


def registry_with(*collectors: Collector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry


def test_refresh_durations_fall_in_the_first_bucket_at_or_above_them() -> None:
    metrics = RefreshMetrics()
    for duration in (0.005, 0.01, 0.3, 100.0):
        metrics.observe(outcome(duration))
    registry = registry_with(metrics)

    def bucket(bound: str) -> float | None:
        return registry.get_sample_value(
            "summary_exporter_refresh_duration_seconds_bucket", {"le": bound}
        )

    assert (bucket("0.01"), bucket("0.25"), bucket("0.5"), bucket("30.0")) == (2, 2, 3, 3)
    assert bucket("+Inf") == 4
    assert registry.get_sample_value("summary_exporter_refresh_duration_seconds_sum") == 100.315
    assert registry.get_sample_value("summary_exporter_refresh_duration_seconds_count") == 4


def test_query_errors_and_answers_are_counted_by_their_labels() -> None:
    metrics = RefreshMetrics()
    timeout = UpstreamTimeout("http://a", "slow")
    metrics.observe(
        outcome(0.1, {"http": timeout, "models": QueryRejected("u", "bad_data", "x", status=400)})
    )
    metrics.observe(outcome(0.1, {"http": timeout}))
    registry = registry_with(metrics)

    def errors(domain: str, reason: str) -> float | None:
        labels = {"domain": domain, "reason": reason}
        return registry.get_sample_value("summary_exporter_query_errors_total", labels)

    assert (errors("http", "timeout"), errors("models", "bad_data")) == (2, 1)
    answers = {"upstream": "http://a"}
    assert registry.get_sample_value("summary_exporter_upstream_answers_total", answers) == 54


def test_no_created_series_in_either_exposition_format() -> None:
    metrics = RefreshMetrics()
    metrics.observe(outcome(0.1, {"http": UpstreamTimeout("http://a", "slow")}))
    registry = registry_with(metrics, EnvironmentCollector(Environment("production", None)))

    assert b"_created" not in generate_latest(registry)
    assert b"_created" not in generate_openmetrics(registry)


def test_the_environment_is_an_info_metric() -> None:
    registry = registry_with(EnvironmentCollector(Environment("production", "false")))

    text = generate_openmetrics(registry).decode()
    assert "# TYPE summary_environment info\n" in text
    assert 'summary_environment_info{app_env="production",testing="false"} 1.0\n' in text


def test_help_says_over_the_window_only_for_fields_whose_query_uses_it(
    catalog: Catalog, prometheus_client: PrometheusClient
) -> None:
    refresher = Refresher(
        Evaluator(catalog, prometheus_client, max_concurrency=1, limits=LIMITS, max_bytes=1 << 20),
        window="1h",
        interval=15,
        max_staleness=150,
    )
    text = generate_latest(registry_with(SummaryCollector(catalog, refresher))).decode()
    helps = {line.split(" ")[2]: line for line in text.splitlines() if line.startswith("# HELP ")}
    windowed = " Computed by PromQL over the last 1h, refreshed every 15s."
    instant = " Computed by PromQL, refreshed every 15s."
    for domain, name, spec in catalog.fields():
        for gauge in spec.gauge_names(domain, name):
            help_line = helps[gauge]
            assert help_line.endswith(windowed if spec.windowed else instant), help_line
    assert helps["summary_http_in_progress"].endswith(instant)
    assert helps["summary_http_total_requests"].endswith(windowed)
