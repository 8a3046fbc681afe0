"""The server harness answers PromQL on the samples it was given, like the real servers do."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from harness.servers import (
    PrometheusServer,
    Sample,
    ServerError,
    VictoriaMetricsServer,
    require_binary,
)

T0 = 1735689600.0  # 2025-01-01T00:00:00Z
END = T0 + 600
INCREASE = "increase(x_total[5m])"

# The servers listen on 127.0.0.1; an http_proxy from the environment must not reroute that.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Starter = Callable[[Sequence[Sample], Path], PrometheusServer | VictoriaMetricsServer]


def counter(labels: dict[str, str] | None = None) -> list[Sample]:
    """x_total rising by 3 every 15 s for 10 minutes from T0."""
    return [Sample("x_total", labels or {"job": "api"}, T0 + 15 * k, 3.0 * k) for k in range(41)]


def instant(url: str, promql: str, at: float, timeout: float = 10.0) -> list[dict[str, Any]]:
    params = urllib.parse.urlencode({"query": promql, "time": at})
    with _HTTP.open(f"{url}/api/v1/query?{params}", timeout=timeout) as response:
        body = json.load(response)
    assert body["status"] == "success"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def only_value(result: list[dict[str, Any]]) -> float:
    assert len(result) == 1, result
    return float(result[0]["value"][1])


@pytest.mark.integration
def test_prometheus_answers_from_backfilled_samples_and_logs_the_query(tmp_path: Path) -> None:
    with PrometheusServer.start(counter(), tmp_path) as prometheus:
        result = instant(prometheus.url, INCREASE, END)

        assert result[0]["metric"] == {"job": "api"}
        assert only_value(result) == pytest.approx(60, rel=1e-9)
        assert INCREASE in [entry["params"]["query"] for entry in prometheus.logged()]


@pytest.mark.integration
def test_victoria_metrics_answers_from_imported_samples(tmp_path: Path) -> None:
    with VictoriaMetricsServer.start(counter(), tmp_path) as victoria_metrics:
        result = instant(victoria_metrics.url, INCREASE, END)

        assert result[0]["metric"] == {"job": "api"}
        assert only_value(result) == pytest.approx(60, rel=1e-9)
        # The latest sample is visible at its own timestamp (no latency offset).
        assert only_value(instant(victoria_metrics.url, "x_total", END)) == 120


@pytest.mark.integration
@pytest.mark.parametrize(
    "start", [PrometheusServer.start, VictoriaMetricsServer.start], ids=["prometheus", "vm"]
)
def test_label_values_keep_quotes_backslashes_and_newlines(start: Starter, tmp_path: Path) -> None:
    awkward = {"path": 'say "hi"\\now\nplease', "job": "api"}

    with start(counter(awkward), tmp_path) as server:
        result = instant(server.url, "x_total", END)

    assert result[0]["metric"] == {"__name__": "x_total", **awkward}


@pytest.mark.integration
def test_prometheus_accepts_typed_families(tmp_path: Path) -> None:
    buckets = [("0.5", 2.0), ("1", 6.0), ("+Inf", 8.0)]
    histogram = [Sample("latency_seconds_bucket", {"le": le}, END, n) for le, n in buckets]
    histogram += [
        Sample("latency_seconds_count", {}, END, 8.0),
        Sample("latency_seconds_sum", {}, END, 5.5),
    ]
    types = {"latency_seconds": "histogram", "x": "counter"}

    with PrometheusServer.start(counter() + histogram, tmp_path, metric_types=types) as prometheus:
        median = instant(prometheus.url, "histogram_quantile(0.5, latency_seconds_bucket)", END)
        total = instant(prometheus.url, "x_total", END)

    assert only_value(median) == pytest.approx(0.75)
    assert only_value(total) == 120
    assert "# TYPE latency_seconds histogram" in (tmp_path / "samples.om").read_text()


@pytest.mark.integration
def test_prometheus_keeps_its_data_across_kill_and_restart(tmp_path: Path) -> None:
    with PrometheusServer.start(counter(), tmp_path) as prometheus:
        url, first_pid = prometheus.url, prometheus.pid

        prometheus.kill()
        with pytest.raises(urllib.error.URLError):
            instant(url, INCREASE, END)
        prometheus.restart()

        assert prometheus.url == url
        assert prometheus.pid != first_pid
        assert only_value(instant(url, INCREASE, END)) == pytest.approx(60, rel=1e-9)


@pytest.mark.integration
def test_paused_prometheus_times_out_until_resumed(tmp_path: Path) -> None:
    with PrometheusServer.start(counter(), tmp_path) as prometheus:
        prometheus.pause()
        with pytest.raises(TimeoutError):
            instant(prometheus.url, INCREASE, END, timeout=0.5)
        prometheus.resume()

        assert only_value(instant(prometheus.url, INCREASE, END)) == pytest.approx(60, rel=1e-9)


@pytest.mark.integration
def test_stop_ends_the_process_and_can_be_repeated(tmp_path: Path) -> None:
    prometheus = PrometheusServer.start([], tmp_path)
    prometheus.stop()
    prometheus.stop()

    with pytest.raises(ProcessLookupError):
        os.kill(prometheus.pid, 0)


def test_duplicate_samples_are_rejected_before_anything_starts(tmp_path: Path) -> None:
    twice = [Sample("x_total", {}, T0, 1.0), Sample("x_total", {}, T0 + 0.0001, 2.0)]

    with pytest.raises(ValueError, match="two samples of x_total"):
        VictoriaMetricsServer.start(twice, tmp_path)


def test_metric_types_outside_openmetrics_are_rejected(tmp_path: Path) -> None:
    # promtool 2.42 refuses "untyped", the Prometheus text format's name for "unknown".
    with pytest.raises(ValueError, match="'untyped' of x"):
        PrometheusServer.start(counter(), tmp_path, metric_types={"x": "untyped"})


@pytest.mark.parametrize("ci", [None, "true"])
def test_missing_binary_fails_with_the_install_hint_on_ci_or_not(
    monkeypatch: pytest.MonkeyPatch, ci: str | None
) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(ServerError, match="apt-get install -y prometheus"):
        require_binary("no-such-server-binary")
