"""What a user sees in /summary, /metrics and the log for each way the upstream can fail.

The upstream is a fake on loopback; it answers with what real servers and proxies send
when things go wrong, including what a real server cannot be made to do on cue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from exporter.catalog import Catalog
from tests.exporter_client import answer_every_field, body, service, started
from tests.fake_prometheus import FakePrometheus, scalar_vector


@dataclass(frozen=True)
class Failure:
    reason: str  # the `reason` label of summary_exporter_query_errors_total
    shows: str  # what the null's reason and the log say
    error: tuple[int, str, str] | None = None
    raw: tuple[int, str, bytes] | None = None
    delay: float = 0.0


def _json(text: str) -> bytes:
    return text.encode()


FAILURES = {
    "slower than the timeout": Failure("timeout", "no answer within 0.3s", delay=1.0),
    "503 unavailable": Failure(
        "unavailable",
        "unavailable: no healthy ingester",
        error=(503, "unavailable", "no healthy ingester"),
    ),
    "503 timeout": Failure(
        "timeout", "timeout: query timed out", error=(503, "timeout", "query timed out")
    ),
    "422 execution": Failure(
        "execution",
        "execution: query processing would load too many samples into memory",
        error=(422, "execution", "query processing would load too many samples into memory"),
    ),
    "400 bad_data": Failure(
        "bad_data", "bad_data: 1:5: parse error", error=(400, "bad_data", "1:5: parse error")
    ),
    "VictoriaMetrics 422": Failure(
        "execution", "422: cannot parse", error=(422, "422", "cannot parse")
    ),
    "an errorType of its own": Failure(
        "other", "mimir_limit: too many", error=(429, "mimir_limit", "too many")
    ),
    "no errorType": Failure(
        "unavailable",
        "http_503: overloaded",
        raw=(503, "application/json", b'{"status":"error","error":"overloaded"}'),
    ),
    "502 HTML from a proxy": Failure(
        "invalid_response",
        "HTTP 502, not a Prometheus API answer: <html><body>502 Bad Gateway</body></html>",
        raw=(502, "text/html", b"<html><body>502 Bad Gateway</body></html>"),
    ),
    "truncated JSON": Failure(
        "invalid_response",
        "not a Prometheus API answer",
        raw=(200, "application/json", b'{"status":"success","data":{"resultType":"vec'),
    ),
    "matrix result": Failure(
        "invalid_response",
        "result type 'matrix'",
        raw=(
            200,
            "application/json",
            _json('{"status":"success","data":{"resultType":"matrix","result":[]}}'),
        ),
    ),
    "string result": Failure(
        "invalid_response",
        "result type 'string'",
        raw=(
            200,
            "application/json",
            _json('{"status":"success","data":{"resultType":"string","result":[0,"x"]}}'),
        ),
    ),
    "oversized body": Failure(
        "too_large",
        "answer larger than 2048 bytes (EXPORTER_MAX_RESPONSE_BYTES)",
        raw=(200, "application/json", b'{"status":"success","warnings":["' + b"x" * 4096 + b'"]}'),
    ),
}


@pytest.mark.parametrize("case", FAILURES.values(), ids=FAILURES.keys())
async def test_each_failure_is_a_null_with_its_cause_a_counted_error_and_one_log_line(
    case: Failure,
    start_exporter: Any,
    fake_prometheus: FakePrometheus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_prometheus.error, fake_prometheus.raw, fake_prometheus.delay = (
        case.error,
        case.raw,
        case.delay,
    )
    with caplog.at_level(logging.WARNING, logger="exporter.refresher"):
        # A short query timeout only where the case is one: on a loaded machine, answers
        # that are not meant to be late could be.
        client = await started(
            start_exporter,
            fake_prometheus.url,
            query_timeout=0.3 if case.delay else 4.5,
            max_response_bytes=2048,
        )
        document = await body(await client.get("/summary"))
        metrics = await (await client.get("/metrics")).text()
    reason = document["nulls"]["http.total_requests"]
    assert reason.startswith(f"query failed: {fake_prometheus.url}: ")
    assert case.shows in reason
    assert document["metrics"]["http"]["total_requests"] is None
    assert document["upstream"]["up"] is False
    assert "summary_exporter_up 0.0\n" in metrics
    assert (
        f'summary_exporter_query_errors_total{{domain="http",reason="{case.reason}"}} 7.0'
        in metrics
    )
    failures = [r.getMessage() for r in caplog.records if "event=query_failed" in r.getMessage()]
    assert len(failures) == 1
    assert case.shows in failures[0]


async def test_connection_refused_is_a_connection_error(start_exporter: Any) -> None:
    client = await started(start_exporter, "http://127.0.0.1:9")
    document = await body(await client.get("/summary"))
    assert "cannot connect" in document["nulls"]["http.total_requests"]
    metrics = await (await client.get("/metrics")).text()
    assert (
        'summary_exporter_query_errors_total{domain="models",reason="connection"} 11.0' in metrics
    )


async def test_dns_failure_is_a_connection_error(start_exporter: Any) -> None:
    dns_error = aiohttp.ClientConnectorDNSError(
        aiohttp.client_reqrep.ConnectionKey(
            "prometheus.invalid", 9090, False, True, None, None, None
        ),
        OSError(-2, "Name or service not known"),
    )
    with aioresponses(passthrough=["http://127.0.0.1"]) as mocked:
        mocked.post("http://prometheus.invalid:9090/api/v1/query", exception=dns_error, repeat=True)
        client = await started(start_exporter, "http://prometheus.invalid:9090")
        document = await body(await client.get("/summary"))
    reason = document["nulls"]["http.total_requests"]
    assert reason == (
        "query failed: http://prometheus.invalid:9090: cannot connect: Name or service not known"
    )


async def test_nan_and_infinities_are_nulls_with_reasons_not_errors(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_every_field(fake_prometheus, catalog)
    fields = catalog.domains["http"].fields
    fake_prometheus.answers[fields["avg_latency_ms"].render("5m")] = scalar_vector("NaN")
    fake_prometheus.answers[fields["p95_latency_ms"].render("5m")] = scalar_vector("+Inf")
    fake_prometheus.answers[fields["request_rate_per_minute"].render("5m")] = scalar_vector("-Inf")
    client = await started(start_exporter, fake_prometheus.url)
    document = await body(await client.get("/summary"))
    assert document["nulls"] == {
        "http.avg_latency_ms": "Prometheus returned NaN",
        "http.p95_latency_ms": "Prometheus returned +Inf",
        "http.request_rate_per_minute": "Prometheus returned -Inf",
    }
    assert document["upstream"]["up"] is True
    assert "summary_exporter_query_errors_total{" not in await (await client.get("/metrics")).text()


async def test_upstream_warnings_are_shown_with_their_field(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    fake_prometheus.raw = (
        200,
        "application/json",
        _json(
            '{"status":"success","warnings":["PromQL info: metric might not be a counter"],'
            '"data":{"resultType":"vector","result":[]}}'
        ),
    )
    client = await started(start_exporter, fake_prometheus.url)
    document = await body(await client.get("/summary"))
    assert document["warnings"]["http.total_requests"] == [
        "PromQL info: metric might not be a counter"
    ]
    # Every answer is empty, the question which metrics exist included: no zero is claimed.
    assert document["metrics"]["http"]["total_requests"] is None
    assert document["nulls"]["http.total_requests"].startswith("fastapi_requests_total has no")


async def test_one_failing_domain_leaves_the_others_fresh(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_every_field(fake_prometheus, catalog, "3")
    client = await started(start_exporter, fake_prometheus.url)
    fake_prometheus.failing = "cache_"  # only the cache query of the database domain
    fake_prometheus.error = (422, "execution", "too many samples")
    await service(client).refresher.refresh_once()
    document = await body(await client.get("/summary"))
    assert document["stale"] is True
    assert list(document["stale_fields"]) == ["database.cache_hit_rate"]
    assert document["metrics"]["database"]["cache_hit_rate"] == 3
    assert document["metrics"]["http"]["total_requests"] == 3
    assert document["upstream"]["up"] is True
    assert (
        "execution: too many samples"
        in document["stale_fields"]["database.cache_hit_rate"]["error"]
    )
