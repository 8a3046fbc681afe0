"""Range queries: the matrix parser and the client, failing with our typed errors."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from exporter.errors import InvalidResponse, QueryRejected, UpstreamUnreachable
from exporter.prometheus import PrometheusClient, RangeSeries, ReadBudget, parse_range_response
from tests.fake_prometheus import FakePrometheus

UPSTREAM = "http://prom"


def matrix(*series: dict[str, Any]) -> bytes:
    return json.dumps(
        {"status": "success", "data": {"resultType": "matrix", "result": list(series)}}
    ).encode()


def test_a_matrix_becomes_series_of_points_with_nan_kept_as_sent() -> None:
    body = matrix(
        {"metric": {"job": "api"}, "values": [[1767227340, "9.5"], [1767227400.5, "NaN"]]},
        {"metric": {}, "values": []},
    )
    first, second = parse_range_response(UPSTREAM, 200, body)
    assert first.labels == {"job": "api"}
    assert first.points[0] == (1767227340.0, 9.5)
    assert first.points[1][0] == 1767227400.5
    assert math.isnan(first.points[1][1])
    assert second == RangeSeries({}, ())


def test_an_error_answer_is_the_same_typed_error_as_for_instant_queries() -> None:
    body = b'{"status":"error","errorType":"bad_data","error":"parse error"}'
    with pytest.raises(QueryRejected) as caught:
        parse_range_response(UPSTREAM, 400, body)
    assert caught.value.reason == "bad_data"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"status":"success","data":{"resultType":"vector","result":[]}}',
            "an instant result where a range (matrix) was expected",
        ),
        (b"<html>bad gateway</html>", "not a Prometheus API answer"),
        (matrix({"metric": {}, "values": [["soon", "1"]]}), "sample timestamp is not a number"),
        (matrix({"metric": {}, "values": [[1, 1]]}), "malformed sample value"),
        (matrix({"metric": {"a": 1}, "values": [[1, "1"]]}), "series labels are not a string map"),
        (matrix({"metric": {}}), "matrix element has no list of values"),
    ],
)
def test_anything_but_a_matrix_is_an_invalid_response(body: bytes, message: str) -> None:
    with pytest.raises(InvalidResponse) as caught:
        parse_range_response(UPSTREAM, 200, body)
    assert message in str(caught.value)


async def test_the_client_asks_query_range_with_start_end_and_step(
    fake_prometheus: FakePrometheus, prometheus_client: PrometheusClient
) -> None:
    fake_prometheus.ranges["up"] = [{"metric": {}, "values": [[1767227400, "1"]]}]
    series = await prometheus_client.query_range(
        "up", 1767223800.0, 1767227400.0, 60, ReadBudget(1 << 20)
    )
    assert series == (RangeSeries({}, ((1767227400.0, 1.0),)),)
    assert fake_prometheus.asked_ranges == [("up", "1767223800.000", "1767227400.000", "60")]


async def test_the_client_reports_an_unreachable_upstream(
    prometheus_client: PrometheusClient, fake_prometheus: FakePrometheus
) -> None:
    await fake_prometheus.close()
    with pytest.raises(UpstreamUnreachable):
        await prometheus_client.query_range("up", 1.0, 2.0, 1, ReadBudget(1 << 20))
