"""Prometheus exposition of the summary: one gauge per field, plus the exporter's self-metrics.

Collection reads the prepared snapshot; a scrape never queries the upstream. Every family is
built on each scrape from state the exporter already holds, the counters too: so no
`_created` series is exported, without touching prometheus_client's process-wide settings.
The exposition passes `promtool check metrics`.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter
from collections.abc import Iterable

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from exporter import __version__
from exporter.catalog import ENVIRONMENT_INFO, Catalog, FieldSpec, Kind
from exporter.catalog_file import CatalogFile
from exporter.environment import Environment
from exporter.health import Status, liveness
from exporter.refresher import Clock, Refresher, RefreshOutcome
from exporter.snapshot import FieldValue


class SummaryCollector(Collector):
    """Builds fresh gauge families from the refresher's current snapshot on every scrape."""

    def __init__(self, catalog: Catalog, refresher: Refresher, clock: Clock = time.time) -> None:
        self._catalog = catalog
        self._refresher = refresher
        self._clock = clock
        refreshed = f"refreshed every {refresher.interval:g}s."
        # Only a query that uses the window looks back over it; others read one instant.
        self._provenance = {
            True: f" Computed by PromQL over the last {refresher.window}, {refreshed}",
            False: f" Computed by PromQL, {refreshed}",
        }

    def collect(self) -> Iterable[Metric]:
        snapshot = self._refresher.current
        yield from self._self_metrics()
        # The gauges of the catalog the snapshot was evaluated with, reloaded or not.
        catalog = self._catalog if snapshot is None else snapshot.catalog
        gateway = liveness(catalog, snapshot)
        family = GaugeMetricFamily(
            "summary_liveness",
            "1 for the gateway's liveness status (ok, degraded, critical or unknown), from the"
            " catalog's liveness checks: critical when it is down; 0 for the other statuses.",
            labels=["status"],
        )
        for status in Status:
            family.add_metric([status.value], 1.0 if status is gateway.status else 0.0)
        yield family
        for domain, name, spec in catalog.fields():
            field = snapshot.fields.get((domain, name)) if snapshot else None
            if spec.kind is Kind.TABLE:
                yield from self._table(domain, name, spec, field)
                continue
            gauge_name = spec.gauge_name(domain, name)
            help_text = spec.help + self._provenance[spec.windowed]
            if spec.kind is Kind.LABELS:
                family = GaugeMetricFamily(gauge_name, help_text, labels=[spec.label or "label"])
                for label_value, value in field.series if field else ():
                    family.add_metric([label_value], value * spec.gauge_factor)
            else:
                family = GaugeMetricFamily(gauge_name, help_text)
                if field is not None and isinstance(field.value, int | float):
                    family.add_metric([], field.value * spec.gauge_factor)
            yield family

    def _table(
        self, domain: str, name: str, spec: FieldSpec, field: FieldValue | None
    ) -> Iterable[Metric]:
        """One family per column, the row's entity as a label: a numeric column's cells as
        values, a label column's as a second label (value 1). The rows are bounded by
        EXPORTER_MAX_ENTITIES, and so are these label values."""
        assert spec.label is not None  # the catalog guarantees a table's entity label
        rows = field.value if field is not None and isinstance(field.value, list) else []
        for column_name, column in spec.columns.items():
            help_text = f"{spec.help} Column {column_name}: {column.help}"
            help_text += self._provenance[spec.windowed]
            gauge_name = spec.column_gauge_name(domain, name, column_name)
            if column.numeric:
                family = GaugeMetricFamily(gauge_name, help_text, labels=[spec.label])
            else:
                family = GaugeMetricFamily(gauge_name, help_text, labels=[spec.label, column_name])
            for row in rows:
                if not isinstance(row, dict):
                    continue
                entity, cell = str(row[spec.label]), row.get(column_name)
                if isinstance(cell, int | float):
                    family.add_metric([entity], cell * column.gauge_factor)
                elif isinstance(cell, str):
                    family.add_metric([entity, cell], 1.0)
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
        recorded = GaugeMetricFamily(
            "summary_exporter_recorded_fields",
            "Fields of the newest snapshot answered by their recording rules"
            " (EXPORTER_RECORDED_RULES) rather than their PromQL.",
        )
        if snapshot is not None:
            recorded.add_metric([], sum(f.recorded for f in snapshot.fields.values()))
        yield recorded
        yield InfoMetricFamily(
            "summary_exporter_build", "Version of summary-exporter.", {"version": __version__}
        )


class RefreshMetrics(Collector):
    """Self-metrics that accumulate over refreshes: durations and query errors by cause."""

    BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

    def __init__(self) -> None:
        # Refreshes per bucket (not cumulative), the last one for those beyond every bound.
        self._durations = [0] * (len(self.BUCKETS) + 1)
        self._duration_sum = 0.0
        self._errors: Counter[tuple[str, str]] = Counter()
        self._answers: Counter[str] = Counter()

    def observe(self, outcome: RefreshOutcome) -> None:
        self._durations[bisect.bisect_left(self.BUCKETS, outcome.duration)] += 1
        self._duration_sum += outcome.duration
        for domain, error in outcome.snapshot.errors():
            self._errors[(domain, error.reason)] += 1
        self._answers.update(outcome.snapshot.answered_by)

    def collect(self) -> Iterable[Metric]:
        bounds = [repr(bound) for bound in self.BUCKETS] + ["+Inf"]
        cumulative = [sum(self._durations[: index + 1]) for index in range(len(bounds))]
        duration = HistogramMetricFamily(
            "summary_exporter_refresh_duration_seconds",
            "Wall time of one refresh (all catalog queries).",
        )
        duration.add_metric([], list(zip(bounds, cumulative, strict=True)), self._duration_sum)
        yield duration
        errors = CounterMetricFamily(
            "summary_exporter_query_errors",
            "Failed catalog queries, by domain and cause (the upstream's errorType, timeout,"
            " connection or invalid_response).",
            labels=["domain", "reason"],
        )
        for (domain, reason), count in self._errors.items():
            errors.add_metric([domain, reason], count)
        yield errors
        answers = CounterMetricFamily(
            "summary_exporter_upstream_answers",
            "Catalog queries answered, by upstream (several when failing over in an HA pair).",
            labels=["upstream"],
        )
        for upstream, count in self._answers.items():
            answers.add_metric([upstream], count)
        yield answers


class CatalogCollector(Collector):
    """How the last reload of the catalog file (SIGHUP) went, as Prometheus reports its own."""

    def __init__(self, catalog_file: CatalogFile) -> None:
        self._file = catalog_file

    def collect(self) -> Iterable[Metric]:
        success = GaugeMetricFamily(
            "summary_exporter_catalog_reload_success",
            "1 when the last reload of the catalog file succeeded (or none was asked), else 0:"
            " the previous catalog is still in force.",
        )
        success.add_metric([], 1.0 if self._file.last_reload_succeeded else 0.0)
        yield success
        loaded = GaugeMetricFamily(
            "summary_exporter_catalog_reload_timestamp_seconds",
            "When the catalog in force was read: at start, or by the last successful reload.",
        )
        loaded.add_metric([], self._file.loaded_at)
        yield loaded


class EnvironmentCollector(Collector):
    """`summary_environment_info{app_env,testing}`: the gateway's environment, always 1."""

    def __init__(self, environment: Environment) -> None:
        self._environment = environment

    def collect(self) -> Iterable[Metric]:
        testing = "true" if self._environment.testing else "false"
        yield InfoMetricFamily(
            ENVIRONMENT_INFO.removesuffix("_info"),
            "The gateway's APP_ENV (empty when unset) and whether its test mode is on.",
            {"app_env": self._environment.app_env or "", "testing": testing},
        )
