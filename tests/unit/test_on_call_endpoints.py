"""/health, ?explain=1, the status page and the environment, against a fake upstream."""

from __future__ import annotations

import re
from typing import Any

from exporter.catalog import Catalog
from exporter.environment import Environment
from tests.exporter_client import answer_degraded, answer_fields, body, started
from tests.fake_prometheus import FakePrometheus, scalar_vector

BUSY_AT = "1767227400"  # 2026-01-01T00:30:00Z


async def test_health_is_200_with_the_status_and_every_check_in_the_body(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_degraded(fake_prometheus, catalog)
    client = await started(start_exporter, fake_prometheus.url)
    response = await client.get("/health")
    assert response.status == 200
    document = await body(response)
    assert document["status"] == "degraded"
    assert document["checks"]["http_error_rate"]["status"] == "degraded"
    assert document["checks"]["http_error_rate"]["value"] == 10.0
    assert document["checks"]["upstream"]["status"] == "ok"
    assert document["source"] == "background"
    assert (await client.get("/health", params={"strict": "1"})).status == 200


async def test_strict_health_is_503_only_when_critical(start_exporter: Any) -> None:
    client = await started(start_exporter, "http://127.0.0.1:9")
    relaxed = await client.get("/health")
    assert relaxed.status == 200
    assert (await body(relaxed))["status"] == "critical"
    strict = await client.get("/health", params={"strict": "true"})
    assert strict.status == 503
    assert (await body(strict))["checks"]["upstream"]["display"] == "unreachable"


async def test_health_answers_before_the_first_refresh(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    fake_prometheus.delay = 1.0
    client = await start_exporter(fake_prometheus.url)
    response = await client.get("/health")
    assert response.status == 200
    document = await body(response)
    assert document["status"] == "degraded"
    assert document["checks"]["snapshot_age"]["reason"] == "the first refresh has not finished yet"


async def test_health_at_a_past_instant_is_judged_as_of_that_instant(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_fields(fake_prometheus, catalog, {"providers.total_providers": "4"})
    client = await started(start_exporter, fake_prometheus.url)
    document = await body(await client.get("/health", params={"time": BUSY_AT}))
    assert document["timestamp"] == "2026-01-01T00:30:00Z"
    assert document["source"] == "on_demand"
    assert document["checks"]["snapshot_age"]["value"] == 0
    assert document["status"] == "ok"


async def test_bad_health_and_page_parameters_are_400(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    for path, params in [
        ("/health", {"strict": "maybe"}),
        ("/health", {"explain": "1"}),
        ("/health", {"window": "5x"}),
        ("/", {"strict": "1"}),
        ("/", {"time": "yesterday"}),
        ("/summary", {"explain": "yes"}),
        ("/summary", {"strict": "1"}),
    ]:
        response = await client.get(path, params=params)
        assert response.status == 400, (path, params)
        assert (await body(response))["error"], (path, params)


async def test_explain_adds_the_promql_and_instant_of_every_field(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_fields(fake_prometheus, catalog, {}, window="1h")
    client = await started(start_exporter, fake_prometheus.url)
    params = {"explain": "1", "time": BUSY_AT, "window": "1h"}
    document = await body(await client.get("/summary", params=params))
    explained = document["explain"]
    assert list(explained) == [f"{domain}.{name}" for domain, name, _ in catalog.fields()]
    error_rate = catalog.domains["http"].fields["error_rate"]
    assert explained["http.error_rate"] == {
        "promql": error_rate.render("1h"),
        "time": "2026-01-01T00:30:00Z",
        "unit": "percent",
        "answered_by": "promql",
        "reads": {"fastapi_requests_total": 1},
        "reads_promql": catalog.existence_query(("fastapi_requests_total",)),
    }
    p95 = catalog.domains["http"].fields["p95_latency_ms"]
    assert p95.lower_bound is not None
    assert explained["http.p95_latency_ms"]["lower_bound"] == {
        "promql": p95.render_lower_bound("1h"),
        "applies": False,
        "reason": p95.lower_bound.reason,
    }
    one_domain = await body(await client.get("/summary/models", params={"explain": "1"}))
    assert {key.split(".")[0] for key in one_domain["explain"]} == {"models"}
    plain = await body(await client.get("/summary", params={"explain": "0"}))
    assert "explain" not in plain


async def test_check_queries_stay_out_of_the_summary_and_the_gauges(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    synthetic = catalog.checks["synthetic_series"].answer_spec().render("5m")
    fake_prometheus.answers[synthetic] = scalar_vector("20")
    client = await started(start_exporter, fake_prometheus.url)
    summary = await (await client.get("/summary")).text()
    metrics = await (await client.get("/metrics")).text()
    assert "synthetic" not in summary
    assert "synthetic" not in metrics
    health = await body(await client.get("/health"))
    assert health["checks"]["synthetic_series"]["value"] == 20.0


async def test_the_summary_and_the_gauges_report_version_and_environment(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(
        start_exporter, fake_prometheus.url, environment=Environment("testing", "true")
    )
    for params in ({}, {"time": BUSY_AT}):
        document = await body(await client.get("/summary", params=params))
        assert document["environment"] == {"app_env": "testing", "testing": True}
        assert document["exporter"] == {"version": "0.1.0"}
    metrics = await (await client.get("/metrics")).text()
    assert 'summary_environment_info{app_env="testing",testing="true"} 1.0\n' in metrics
    assert 'summary_exporter_build_info{version="0.1.0"} 1.0\n' in metrics


async def test_the_status_page_is_html_and_views_share_one_set_of_range_queries(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_degraded(fake_prometheus, catalog)
    client = await started(start_exporter, fake_prometheus.url)
    for _ in range(3):
        response = await client.get("/")
        assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Cache-Control"] == "no-store"
    page = await response.text()
    assert re.search(r"Gateway status <span class=\"badge degraded\">degraded</span>", page)
    assert len(fake_prometheus.asked_ranges) == 4
    assert '<meta http-equiv="refresh" content="3600">' in page


async def test_a_page_at_a_past_instant_draws_the_hour_before_it_and_stays_put(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    page = await (await client.get("/", params={"time": "2026-01-01T00:30:00Z"})).text()
    assert {(start, end, step) for _, start, end, step in fake_prometheus.asked_ranges} == {
        ("1767223800.000", "1767227400.000", "60")
    }
    assert "http-equiv" not in page
    assert "No sparkline: no data in the last hour" in page
