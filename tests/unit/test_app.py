"""The HTTP contract of the service, against a fake upstream on loopback."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from exporter.catalog import Catalog
from tests.exporter_client import (
    answer_every_field,
    answer_fields,
    body,
    distinct_queries,
    service,
    started,
)
from tests.fake_prometheus import FakePrometheus

BUSY_AT = "1767227400"  # 2026-01-01T00:30:00Z


async def test_health_and_readiness_answer_while_the_upstream_is_unreachable(
    start_exporter: Any,
) -> None:
    client = await start_exporter("http://127.0.0.1:9")
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await body(ready))["catalog_fields"] == 49


async def test_summary_serves_the_background_snapshot_without_querying_again(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_every_field(fake_prometheus, catalog)
    client = await started(start_exporter, fake_prometheus.url)
    asked = len(fake_prometheus.asked)
    for _ in range(5):
        response = await client.get("/summary")
        assert response.status == 200
    document = await body(response)
    assert document["metrics"]["http"]["total_requests"] == 2
    assert document["metrics"]["http"]["avg_latency_ms"] == 2.0
    assert document["stale"] is False
    assert len(fake_prometheus.asked) == asked


async def test_one_refresh_asks_each_distinct_promql_once_at_one_instant(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    await started(start_exporter, fake_prometheus.url)
    # With no recording rule answering, the question for their samples comes first.
    [recorded, *raw] = fake_prometheus.queries()
    assert recorded.startswith('{__name__=~"summary:.+",fingerprint=~')
    assert sorted(raw) == sorted(distinct_queries(catalog, "5m"))
    assert len({at for _, at in fake_prometheus.asked}) == 1


async def test_summary_before_the_first_refresh_is_503_with_retry_after(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    fake_prometheus.delay = 1.0
    client = await start_exporter(fake_prometheus.url)
    response = await client.get("/summary")
    assert response.status == 503
    assert response.headers["Retry-After"] == "1"
    assert "first refresh" in (await body(response))["error"]


async def test_window_and_time_evaluate_on_demand_at_that_instant(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    fake_prometheus.asked.clear()
    response = await client.get("/summary", params={"window": "1h", "time": BUSY_AT})
    document = await body(response)
    assert document["timestamp"] == "2026-01-01T00:30:00Z"
    assert document["window"] == "1h"
    assert document["source"] == "on_demand"
    assert {at for _, at in fake_prometheus.asked} == {"1767227400.000"}
    assert all("[5m]" not in q for q in fake_prometheus.queries())


async def test_a_window_comes_back_as_written_and_shares_its_evaluation_with_other_spellings(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    fake_prometheus.asked.clear()
    days = await body(await client.get("/summary", params={"window": "7d", "time": BUSY_AT}))
    week = await body(await client.get("/summary", params={"window": "1w", "time": BUSY_AT}))
    assert (days["window"], week["window"]) == ("7d", "1w")
    assert days["metrics"] == week["metrics"]
    # One evaluation for both, its PromQL in the canonical spelling.
    assert sorted(fake_prometheus.queries()) == sorted(distinct_queries(catalog, "1w"))
    assert all("[7d]" not in query for query in fake_prometheus.queries())


async def test_the_default_window_in_another_spelling_is_the_background_snapshot(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    fake_prometheus.asked.clear()
    document = await body(await client.get("/summary", params={"window": "300s"}))
    assert document["window"] == "300s"
    assert document["source"] == "background"
    assert fake_prometheus.asked == []


async def test_a_window_over_the_maximum_is_refused_naming_the_maximum_as_configured(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    response = await client.get("/summary", params={"window": "365d"})
    assert response.status == 400
    assert (await body(response))["error"] == "window: '365d' is longer than the maximum 30d"


async def test_a_percent_encoded_parameter_is_not_answered_from_the_cached_document(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    document = await body(await client.get("/summary?%77indow=1h"))  # %77 is "w"
    assert document["window"] == "1h"
    assert document["source"] == "on_demand"


async def test_rfc3339_time_is_the_same_instant_as_unix_seconds(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    first = await body(await client.get("/summary", params={"time": BUSY_AT}))
    second = await body(await client.get("/summary", params={"time": "2026-01-01T00:30:00Z"}))
    assert first["timestamp"] == second["timestamp"] == "2026-01-01T00:30:00Z"


async def test_on_demand_results_are_cached_and_single_flighted(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    per_evaluation = len(distinct_queries(catalog, "1h"))
    fake_prometheus.asked.clear()
    fake_prometheus.delay = 0.2
    params = {"window": "1h", "time": BUSY_AT}
    responses = await asyncio.gather(*(client.get("/summary", params=params) for _ in range(10)))
    assert [r.status for r in responses] == [200] * 10
    assert len(fake_prometheus.asked) == per_evaluation
    await client.get("/summary", params=params)
    assert len(fake_prometheus.asked) == per_evaluation


async def test_too_many_distinct_on_demand_requests_get_429_with_retry_after(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url, max_concurrent_on_demand=1)
    fake_prometheus.delay = 0.3
    first = asyncio.ensure_future(client.get("/summary", params={"window": "1h", "time": BUSY_AT}))
    await asyncio.sleep(0.1)
    second = await client.get("/summary", params={"window": "2h", "time": BUSY_AT})
    assert second.status == 429
    assert second.headers["Retry-After"] == "1"
    assert (await first).status == 200


async def test_bad_parameters_are_400_and_never_reach_the_upstream(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    fake_prometheus.asked.clear()
    cases = [
        {"window": "5m])) or vector(1) #"},
        {"window": "5x"},
        {"window": "0s"},
        {"window": "31d"},
        {"window": "5m" * 40},
        {"time": "yesterday"},
        {"time": "2026-01-01T00:30:00"},
        {"time": "NaN"},
        {"time": "-1"},
        {"time": "99999999999"},
        {"windw": "5m"},
    ]
    for params in cases:
        response = await client.get("/summary", params=params)
        assert response.status == 400, params
        assert (await body(response))["error"], params
    assert fake_prometheus.asked == []


async def test_a_repeated_parameter_is_400(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    response = await client.get("/summary?window=5m&window=1h")
    assert response.status == 400


async def test_domain_path_narrows_metrics_and_unknown_domain_is_404(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    one = await body(await client.get("/summary/database"))
    assert list(one["metrics"]) == ["database"]
    missing = await client.get("/summary/nope")
    assert missing.status == 404
    assert "gateway, http, models, providers, database, business" in (await body(missing))["error"]


async def test_gateway_path_keeps_its_category_filter(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    everything = await body(await client.get("/prometheus/metrics/summary"))
    assert list(everything["metrics"]) == [
        "gateway", "http", "models", "providers", "database", "business",
    ]  # fmt: skip
    models = await body(await client.get("/prometheus/metrics/summary?category=models"))
    assert list(models["metrics"]) == ["models"]
    assert (await client.get("/prometheus/metrics/summary?category=nope")).status == 400
    assert (await client.get("/summary?category=models")).status == 400


async def test_wrong_method_is_405_with_allow_and_json(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    response = await client.post("/summary")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    assert (await body(response))["error"] == "Method Not Allowed"


async def test_unknown_path_is_404_json(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    response = await client.get("/nothing-here")
    assert response.status == 404
    assert response.content_type == "application/json"


async def test_metrics_exposes_fields_in_base_units_and_self_metrics(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_every_field(fake_prometheus, catalog, "250")
    top = catalog.domains["models"].fields["top_models"].render("5m")
    fake_prometheus.answers[top] = [
        {"metric": {"model": "gpt-4o"}, "value": [0, "120"]},
        {"metric": {"model": "claude"}, "value": [0, "80"]},
    ]
    client = await started(start_exporter, fake_prometheus.url)
    text = await (await client.get("/metrics")).text()
    assert "summary_http_avg_latency_seconds 0.25\n" in text
    assert "summary_http_error_ratio 2.5\n" in text
    assert "summary_http_total_requests 250.0\n" in text
    assert 'summary_models_requests{model="gpt-4o"} 120.0\n' in text
    assert "summary_exporter_up 1.0\n" in text
    assert "summary_exporter_refresh_duration_seconds_count 1.0\n" in text
    assert (
        "# HELP summary_http_total_requests Requests served in the window. Computed by PromQL"
        in text
    )


async def test_metrics_name_parameters_keep_only_the_named_samples(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    names = ["summary_exporter_up", "summary_environment_info", "summary_exporter_build_info"]
    response = await client.get("/metrics", params=[("name[]", name) for name in names])
    samples = [line for line in (await response.text()).splitlines() if line[:1] != "#"]
    assert sorted(line.split("{")[0].split(" ")[0] for line in samples) == sorted(names)


async def test_failing_upstream_turns_up_to_0_and_counts_errors_by_domain_and_reason(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    fake_prometheus.error = (503, "unavailable", "too busy")
    client = await started(start_exporter, fake_prometheus.url)
    text = await (await client.get("/metrics")).text()
    assert "summary_exporter_up 0.0\n" in text
    assert 'summary_exporter_query_errors_total{domain="http",reason="unavailable"} 7.0\n' in text
    document = await body(await client.get("/summary"))
    assert document["upstream"]["up"] is False
    assert document["nulls"]["http.total_requests"].startswith("query failed: ")
    assert "unavailable: too busy" in document["nulls"]["http.total_requests"]


async def test_last_good_values_stay_marked_stale_when_the_upstream_goes_down(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_every_field(fake_prometheus, catalog, "7")
    client = await started(start_exporter, fake_prometheus.url)
    good = await body(await client.get("/summary"))
    await fake_prometheus.close()
    await service(client).refresher.refresh_once()
    stale = await body(await client.get("/summary"))
    assert stale["metrics"] == good["metrics"]
    assert stale["stale"] is True
    assert stale["timestamp"] == good["timestamp"]
    assert stale["upstream"]["up"] is False
    assert set(stale["stale_fields"]) == {f"{d}.{f}" for d, f, _ in catalog.fields()}
    assert "cannot connect" in stale["stale_fields"]["http.total_requests"]["error"]
    metrics = await (await client.get("/metrics")).text()
    assert "summary_exporter_up 0.0\n" in metrics
    assert "summary_http_total_requests 7.0\n" in metrics


async def test_each_refresh_replaces_the_document_served_at_both_summary_paths(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_every_field(fake_prometheus, catalog, "7")
    client = await started(start_exporter, fake_prometheus.url)
    answer_every_field(fake_prometheus, catalog, "9")
    await service(client).refresher.refresh_once()
    for path in ("/summary", "/prometheus/metrics/summary"):
        document = await body(await client.get(path))
        assert document["metrics"]["http"]["total_requests"] == 9
        assert document["stale"] is False


async def test_an_unexpected_error_is_a_json_500_and_one_log_line(
    start_exporter: Any,
    fake_prometheus: FakePrometheus,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await started(start_exporter, fake_prometheus.url)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("exporter.app.assess", broken)
    response = await client.get("/health")
    assert response.status == 500
    assert (await body(response)) == {"error": "internal error; see the exporter's log"}
    failures = [r for r in caplog.records if "event=request_failed" in r.getMessage()]
    assert [r.getMessage() for r in failures] == ["event=request_failed path=/health"]
    assert failures[0].exc_info is not None


async def test_the_summary_and_the_gauges_say_whether_the_gateway_is_up(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_fields(
        fake_prometheus,
        catalog,
        {
            "gateway.targets_up": "0",
            "gateway.targets_total": "2",
            "gateway.newest_sample_age_ms": "90000",
            "gateway.event_loop_lag_ms": "12.5",
        },
    )
    client = await started(start_exporter, fake_prometheus.url)
    document = await body(await client.get("/summary"))
    assert document["metrics"]["gateway"] == {
        "targets_up": 0,
        "targets_total": 2,
        "newest_sample_age_ms": 90000.0,
        "event_loop_lag_ms": 12.5,
    }
    assert document["liveness"] == {
        "status": "critical",
        "reason": "gateway_targets 0 of 2 (0 %)",
        "checks": {"gateway_targets": "critical", "gateway_samples": "ok"},
    }
    # The same on every path of the summary, with or without parameters.
    narrowed = await body(await client.get("/summary/http", params={"explain": "1"}))
    assert narrowed["liveness"] == document["liveness"]
    text = await (await client.get("/metrics")).text()
    assert 'summary_liveness{status="critical"} 1.0\n' in text
    assert 'summary_liveness{status="ok"} 0.0\n' in text
    assert "summary_gateway_targets_up 0.0\n" in text
    assert "summary_gateway_newest_sample_age_seconds 90.0\n" in text
