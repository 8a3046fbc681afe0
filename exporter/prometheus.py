"""An async client for the instant-query endpoint of the Prometheus HTTP API.

It speaks to Prometheus and to engines with the same API (VictoriaMetrics, Thanos, Mimir)
and turns every way a query can fail into one of our UpstreamError types.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from exporter.errors import (
    InvalidResponse,
    QueryRejected,
    ResponseTooLarge,
    UpstreamTimeout,
    UpstreamUnreachable,
)

QUERY_PATH = "/api/v1/query"
RANGE_QUERY_PATH = "/api/v1/query_range"
# What is kept of the upstream's own words: they end up in documents, logs and the page, and
# an upstream must not be able to make those grow. Each cut says so.
TEXT_LIMIT = 200  # characters of an error message or a warning
WARNINGS_LIMIT = 3  # warnings of one answer
_ERROR_TYPE_LIMIT = 40
_EXCERPT = 200
_CHUNK = 16 * 1024


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


class ReadBudget:
    """The bytes that the answers to one refresh may take together.

    One budget per refresh (and per on-demand summary, and per set of sparklines), shared by
    all its queries: with each answer also capped on its own, what one refresh holds in
    memory is bounded however many queries it asks or however the upstream answers.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._left = limit

    def spend(self, size: int) -> bool:
        """Takes `size` bytes; False once the budget is overdrawn."""
        self._left -= size
        return self._left >= 0


class Upstream(Protocol):
    """Anything that answers instant queries: one client, or several behind failover."""

    display_url: str

    async def query(self, promql: str, at: float, budget: ReadBudget) -> QueryResult: ...


class Credentials(Protocol):
    """Supplies the Authorization header value for each request (None: send none)."""

    def authorization(self) -> str | None: ...


def shorten(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` cut to `limit` characters, saying how long it was when cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… (cut from {len(text)} characters)"


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
        raise QueryRejected(
            upstream,
            _text(document.get("errorType"), _ERROR_TYPE_LIMIT),
            _text(document.get("error")) or f"HTTP {status}",
            status=status,
        )
    data = document.get("data")
    if document["status"] != "success" or status != 200 or not isinstance(data, dict):
        raise InvalidResponse(upstream, f"HTTP {status}, unexpected answer: {_excerpt(body)}")
    warnings = _warnings(document.get("warnings"))
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


def _text(value: Any, limit: int = TEXT_LIMIT) -> str | None:
    """A text field of an answer, shortened; None when it is missing, empty or not text."""
    return shorten(value, limit) if isinstance(value, str) and value else None


def _warnings(field: Any) -> tuple[str, ...]:
    texts = [text for text in field if isinstance(text, str)] if isinstance(field, list) else []
    return bounded_warnings(texts)


def bounded_warnings(texts: Sequence[str]) -> tuple[str, ...]:
    """The first WARNINGS_LIMIT warnings, shortened, and how many more there were."""
    kept = tuple(shorten(text) for text in texts[:WARNINGS_LIMIT])
    left_out = len(texts) - len(kept)
    return kept + ((f"{left_out} more warnings not shown",) if left_out else ())


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
        # Uncompressed answers only: 3 KB at most each, and the cap on what is read
        # then bounds what is held, which a compressed answer (a "zip bomb") would not.
        self._headers = dict(headers or {}) | {"Accept-Encoding": "identity"}
        self._credentials = credentials
        self._extra_form = dict(extra_form or {})

    def _request_headers(self) -> dict[str, str]:
        authorization = self._credentials.authorization() if self._credentials else None
        if authorization is None:
            return self._headers
        return self._headers | {"Authorization": authorization}

    async def query(self, promql: str, at: float, budget: ReadBudget) -> QueryResult:
        """Evaluate `promql` at the unix instant `at`."""
        form = {"query": promql, "time": _format_time(at)}
        status, body = await self._post(QUERY_PATH, form, budget)
        return parse_query_response(self.display_url, status, body)

    async def query_samples(
        self, promql: str, at: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]:
        """Evaluate a range selector (`x[1m]`) at the unix instant `at`: each series' stored
        samples within the range, with their own timestamps."""
        form = {"query": promql, "time": _format_time(at)}
        status, body = await self._post(QUERY_PATH, form, budget)
        return parse_range_response(self.display_url, status, body)

    async def query_range(
        self, promql: str, start: float, end: float, step: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]:
        """Evaluate `promql` every `step` seconds from `start` to `end` (unix instants)."""
        form = {
            "query": promql,
            "start": _format_time(start),
            "end": _format_time(end),
            "step": f"{step:g}",
        }
        status, body = await self._post(RANGE_QUERY_PATH, form, budget)
        return parse_range_response(self.display_url, status, body)

    async def _post(self, path: str, form: dict[str, str], budget: ReadBudget) -> tuple[int, bytes]:
        """POST a form-encoded API request; every transport failure becomes an UpstreamError."""
        # Whole milliseconds: Prometheus rejects a fractional "4.5s" as a duration.
        form = form | {"timeout": f"{max(1, round(self._timeout * 1000))}ms"} | self._extra_form
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.post(
                    self._base + path,
                    data=form,
                    headers=self._request_headers(),
                    # An API answer never redirects; following one would take the credentials
                    # and the budget to wherever the upstream points.
                    allow_redirects=False,
                    # Compressed answers are refused unread, never inflated as they arrive.
                    auto_decompress=False,
                ) as response:
                    return response.status, await self._read_capped(response, budget)
        except TimeoutError:
            raise UpstreamTimeout(
                self.display_url, f"no answer within {self._timeout:g}s"
            ) from None
        except aiohttp.ClientPayloadError as error:
            raise InvalidResponse(
                self.display_url, f"broken response body: {shorten(str(error))}"
            ) from None
        except aiohttp.ClientResponseError:
            raise InvalidResponse(self.display_url, "not a valid HTTP answer") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamUnreachable(self.display_url, _connection_detail(error)) from None

    async def _read_capped(self, response: aiohttp.ClientResponse, budget: ReadBudget) -> bytes:
        """The whole body (decompressed), refusing to hold more than the cap of one answer or
        what is left of the refresh's budget; a declared oversize body is not read at all."""
        too_large = ResponseTooLarge(
            self.display_url,
            f"answer larger than {self._max_bytes} bytes (EXPORTER_MAX_RESPONSE_BYTES)",
        )
        if (response.content_length or 0) > self._max_bytes:
            raise too_large
        encoding = response.headers.get("Content-Encoding", "identity")
        if encoding.lower() != "identity":
            raise InvalidResponse(
                self.display_url, f"answer encoded {shorten(encoding, 20)!r} where none was asked"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(_CHUNK):
            size += len(chunk)
            if size > self._max_bytes:
                raise too_large
            if not budget.spend(len(chunk)):
                raise ResponseTooLarge(
                    self.display_url,
                    f"the answers to one refresh exceed {budget.limit} bytes together"
                    " (EXPORTER_MAX_REFRESH_BYTES)",
                )
            chunks.append(chunk)
        return b"".join(chunks)


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
    """The series of a matrix answer (`/api/v1/query_range`, or `/api/v1/query` of a range
    selector), or the UpstreamError it amounts to."""
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
