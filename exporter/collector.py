"""Prometheus exposition of the summary: one gauge per field, plus the exporter's self-metrics.

Collection reads the prepared snapshot; a scrape never queries the upstream.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.catalog import ENVIRONMENT_INFO, Catalog, Kind
from exporter.environment import Environment
from exporter.refresher import Clock, Refresher, RefreshOutcome


class SummaryCollector(Collector):
    """Builds fresh gauge families from the refresher's current snapshot on every scrape."""

    def __init__(self, catalog: Catalog, refresher: Refresher, clock: Clock = time.time) -> None:
        self._catalog = catalog
        self._refresher = refresher
        self._clock = clock
        self._provenance = (
            f" Computed by PromQL over the last {refresher.window}, refreshed every"
            f" {refresher.interval:g}s."
        )

    def collect(self) -> Iterable[Metric]:
        snapshot = self._refresher.current
        yield from self._self_metrics()
        for domain, name, spec in self._catalog.fields():
            field = snapshot.fields.get((domain, name)) if snapshot else None
            gauge_name = spec.gauge_name(domain, name)
            help_text = spec.help + self._provenance
            if spec.kind is Kind.LABELS:
                family = GaugeMetricFamily(gauge_name, help_text, labels=[spec.label or "label"])
                for label_value, value in field.series if field else ():
                    family.add_metric([label_value], value * spec.gauge_factor)
            else:
                family = GaugeMetricFamily(gauge_name, help_text)
                if field is not None and isinstance(field.value, int | float):
                    family.add_metric([], field.value * spec.gauge_factor)
            yield family

    def _self_metrics(self) -> Iterable[Metric]:
        snapshot = self._refresher.current
        up = GaugeMetricFamily(
            "summary_exporter_up", "1 when the last refresh reached the upstream, else 0."
        )
        up.add_metric([], 1.0 if snapshot is not None and snapshot.reached_upstream else 0.0)
        yield up
        last_success = GaugeMetricFamily(
            "summary_exporter_last_success_timestamp_seconds",
            "Evaluation instant of the last refresh that reached the upstream.",
        )
        if self._refresher.last_success is not None:
            last_success.add_metric([], self._refresher.last_success)
        yield last_success
        age = GaugeMetricFamily(
            "summary_exporter_snapshot_age_seconds",
            "Seconds since the evaluation instant of the newest values served.",
        )
        if snapshot is not None:
            age.add_metric([], max(0.0, self._clock() - snapshot.data_instant))
        yield age
        build = GaugeMetricFamily(
            "summary_exporter_build_info", "Version of summary-exporter.", labels=["version"]
        )
        build.add_metric([__version__], 1.0)
        yield build


class RefreshMetrics:
    """Self-metrics that accumulate over refreshes: durations and query errors by cause."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._duration = Histogram(
            "summary_exporter_refresh_duration_seconds",
            "Wall time of one refresh (all catalog queries).",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=registry,
        )
        self._errors = Counter(
            "summary_exporter_query_errors",
            "Failed catalog queries, by domain and cause (the upstream's errorType, timeout,"
            " connection or invalid_response).",
            labelnames=["domain", "reason"],
            registry=registry,
        )
        self._answers = Counter(
            "summary_exporter_upstream_answers",
            "Catalog queries answered, by upstream (several when failing over in an HA pair).",
            labelnames=["upstream"],
            registry=registry,
        )

    def observe(self, outcome: RefreshOutcome) -> None:
        self._duration.observe(outcome.duration)
        for domain, error in outcome.snapshot.errors():
            self._errors.labels(domain=domain, reason=error.reason).inc()
        for upstream, answered in outcome.snapshot.answered_by.items():
            self._answers.labels(upstream=upstream).inc(answered)


class EnvironmentCollector(Collector):
    """`summary_environment_info{app_env,testing}`: the gateway's environment, always 1."""

    def __init__(self, environment: Environment) -> None:
        self._environment = environment

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily(
            ENVIRONMENT_INFO,
            "The gateway's APP_ENV (empty when unset) and whether its test mode is on.",
            labels=["app_env", "testing"],
        )
        testing = "true" if self._environment.testing else "false"
        info.add_metric([self._environment.app_env or "", testing], 1.0)
        yield info
