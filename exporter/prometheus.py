"""An async client for the instant-query endpoint of the Prometheus HTTP API.

It speaks to Prometheus and to engines with the same API (VictoriaMetrics, Thanos, Mimir)
and turns every way a query can fail into one of our UpstreamError types.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from exporter.errors import InvalidResponse, QueryRejected, UpstreamTimeout, UpstreamUnreachable

QUERY_PATH = "/api/v1/query"
RANGE_QUERY_PATH = "/api/v1/query_range"
_EXCERPT = 200
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector (or the scalar, with no labels)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class QueryResult:
    samples: tuple[Sample, ...]
    warnings: tuple[str, ...] = ()
    upstream: str = ""  # which upstream answered (display form, no credentials)


class Upstream(Protocol):
    """Anything that answers instant queries: one client, or several behind failover."""

    display_url: str

    async def query(self, promql: str, at: float) -> QueryResult: ...


class Credentials(Protocol):
    """Supplies the Authorization header value for each request (None: send none)."""

    def authorization(self) -> str | None: ...


def _excerpt(body: bytes) -> str:
    text = body[:_EXCERPT].decode("utf-8", errors="replace")
    return " ".join(text.split()) + ("..." if len(body) > _EXCERPT else "")


def _parse_value(upstream: str, pair: Any) -> float:
    """A `[timestamp, "value"]` pair; the API sends values as strings, NaN and ±Inf included."""
    if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[1], str)):
        raise InvalidResponse(upstream, f"malformed sample value (a {type(pair).__name__})")
    try:
        return float(pair[1])
    except ValueError:
        raise InvalidResponse(
            upstream, f"sample value {pair[1][:_EXCERPT]!r} is not a number"
        ) from None


def _parse_sample(upstream: str, item: Any) -> Sample:
    if not isinstance(item, dict):
        raise InvalidResponse(upstream, "vector element is not an object")
    labels = item.get("metric", {})
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise InvalidResponse(upstream, "series labels are not a string map")
    return Sample(labels=labels, value=_parse_value(upstream, item.get("value")))


def parse_query_response(upstream: str, status: int, body: bytes) -> QueryResult:
    """The result of one `/api/v1/query` answer, or the UpstreamError that it amounts to."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if not isinstance(document, dict) or "status" not in document:
        raise InvalidResponse(
            upstream, f"HTTP {status}, not a Prometheus API answer: {_excerpt(body)}"
        )
    if document["status"] == "error":
        error_type = document.get("errorType")
        message = document.get("error")
        raise QueryRejected(
            upstream,
            error_type if isinstance(error_type, str) and error_type else f"http_{status}",
            message[: 4 * _EXCERPT] if isinstance(message, str) else f"HTTP {status}",
        )
    data = document.get("data")
    if document["status"] != "success" or status != 200 or not isinstance(data, dict):
        raise InvalidResponse(upstream, f"HTTP {status}, unexpected answer: {_excerpt(body)}")
    warnings_field = document.get("warnings") or []
    warnings = (
        tuple(w for w in warnings_field if isinstance(w, str))
        if isinstance(warnings_field, list)
        else ()
    )
    result_type, result = data.get("resultType"), data.get("result")
    if result_type == "vector" and isinstance(result, list):
        samples = tuple(_parse_sample(upstream, item) for item in result)
        return QueryResult(samples, warnings, upstream)
    if result_type == "scalar":
        scalar = Sample(labels={}, value=_parse_value(upstream, result))
        return QueryResult((scalar,), warnings, upstream)
    shown = result_type[:40] if isinstance(result_type, str) else type(result_type).__name__
    raise InvalidResponse(
        upstream, f"result type {shown!r} where an instant vector or scalar was expected"
    )


class PrometheusClient:
    """Instant queries against one upstream, over a session owned by the caller."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        *,
        display_url: str,
        timeout: float,
        max_response_bytes: int,
        headers: Mapping[str, str] | None = None,
        credentials: Credentials | None = None,
        extra_form: Mapping[str, str] | None = None,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self.display_url = display_url
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._headers = dict(headers or {})
        self._credentials = credentials
        self._extra_form = dict(extra_form or {})

    def _request_headers(self) -> dict[str, str]:
        authorization = self._credentials.authorization() if self._credentials else None
        if authorization is None:
            return self._headers
        return self._headers | {"Authorization": authorization}

    async def query(self, promql: str, at: float) -> QueryResult:
        """Evaluate `promql` at the unix instant `at`."""
        status, body = await self._post(QUERY_PATH, {"query": promql, "time": _format_time(at)})
        return parse_query_response(self.display_url, status, body)

    async def query_range(
        self, promql: str, start: float, end: float, step: float
    ) -> tuple[RangeSeries, ...]:
        """Evaluate `promql` every `step` seconds from `start` to `end` (unix instants)."""
        form = {
            "query": promql,
            "start": _format_time(start),
            "end": _format_time(end),
            "step": f"{step:g}",
        }
        status, body = await self._post(RANGE_QUERY_PATH, form)
        return parse_range_response(self.display_url, status, body)

    async def _post(self, path: str, form: dict[str, str]) -> tuple[int, bytes]:
        """POST a form-encoded API request; every transport failure becomes an UpstreamError."""
        # Whole milliseconds: Prometheus rejects a fractional "4.5s" as a duration.
        form = form | {"timeout": f"{max(1, round(self._timeout * 1000))}ms"} | self._extra_form
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(
                    self._base + path, data=form, headers=self._request_headers()
                ) as response:
                    return response.status, await self._read_capped(response)
        except TimeoutError:
            raise UpstreamTimeout(
                self.display_url, f"no answer within {self._timeout:g}s"
            ) from None
        except aiohttp.ClientPayloadError as error:
            raise InvalidResponse(self.display_url, f"broken response body: {error}") from None
        except aiohttp.ClientResponseError:
            raise InvalidResponse(self.display_url, "not a valid HTTP answer") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamUnreachable(self.display_url, _connection_detail(error)) from None

    async def _read_capped(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole body, chunk by chunk, refusing to hold more than the configured cap."""
        body = bytearray()
        while chunk := await response.content.read(_CHUNK):
            body += chunk
            if len(body) > self._max_bytes:
                raise InvalidResponse(
                    self.display_url, f"answer larger than {self._max_bytes} bytes"
                )
        return bytes(body)


def _format_time(at: float) -> str:
    if not math.isfinite(at):
        raise ValueError("evaluation instant must be finite")
    return f"{at:.3f}"


def _connection_detail(error: BaseException) -> str:
    # aiohttp's messages embed the full URL, which may carry credentials; keep only the cause.
    if isinstance(error, aiohttp.ClientConnectorError):
        return f"cannot connect: {error.os_error.strerror or type(error.os_error).__name__}"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return f"connection failed: {type(error).__name__}"


@dataclass(frozen=True)
class RangeSeries:
    """One series of a range query: (unix time, value) points, NaN and ±Inf as sent."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


def parse_range_response(upstream: str, status: int, body: bytes) -> tuple[RangeSeries, ...]:
    """The series of one `/api/v1/query_range` answer, or the UpstreamError it amounts to."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    data = document.get("data") if isinstance(document, dict) else None
    if (
        status == 200
        and isinstance(document, dict)
        and document.get("status") == "success"
        and isinstance(data, dict)
        and data.get("resultType") == "matrix"
        and isinstance(data.get("result"), list)
    ):
        return tuple(_parse_series(upstream, item) for item in data["result"])
    # Anything else fails as an instant answer would (errors, not JSON, ...), or is an
    # instant answer, which is not what a range query asks for.
    parse_query_response(upstream, status, body)
    raise InvalidResponse(upstream, "an instant result where a range (matrix) was expected")


def _parse_series(upstream: str, item: Any) -> RangeSeries:
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list):
        raise InvalidResponse(upstream, "matrix element has no list of values")
    labels: Mapping[str, str] = {}
    points = []
    for pair in values:
        # Each point is checked as a sample of its series: labels, then [time, "value"].
        sample = _parse_sample(upstream, {"metric": item.get("metric", {}), "value": pair})
        if isinstance(pair[0], bool) or not isinstance(pair[0], int | float):
            raise InvalidResponse(upstream, "sample timestamp is not a number")
        labels = sample.labels
        points.append((float(pair[0]), sample.value))
    return RangeSeries(labels, tuple(points))
