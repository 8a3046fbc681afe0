"""The instant-query client: what it sends, and how every answer or failure comes back."""

from __future__ import annotations

import asyncio
import gzip
import json
import math
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from exporter.errors import (
    InvalidResponse,
    QueryRejected,
    ResponseTooLarge,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from exporter.prometheus import QUERY_PATH, PrometheusClient, QueryResult, ReadBudget, Sample

BASE = "http://prometheus.test:9090"
AT = 1_767_225_600.0  # 2026-01-01T00:00:00Z
SECRET = "s3cret"
BASE_WITH_PASSWORD = f"http://admin:{SECRET}@prometheus.test:9090"

Callback = Callable[..., Awaitable[CallbackResult]]


def answer(result_type: str, result: Any, **extra: Any) -> bytes:
    """A successful /api/v1/query answer."""
    document = {"status": "success", "data": {"resultType": result_type, "result": result}}
    return json.dumps({**document, **extra}).encode()


def rejection(error_type: str, error: str) -> bytes:
    return json.dumps({"status": "error", "errorType": error_type, "error": error}).encode()


def plenty() -> ReadBudget:
    """A refresh budget no answer here comes near."""
    return ReadBudget(1 << 30)


def series(value: Any, **labels: Any) -> dict[str, Any]:
    return {"metric": labels, "value": [AT, value]}


@asynccontextmanager
async def prometheus_client(
    base: str = BASE,
    *,
    display_url: str = BASE,
    query_timeout: float = 5.0,
    max_response_bytes: int = 1 << 20,
) -> AsyncIterator[PrometheusClient]:
    async with aiohttp.ClientSession() as session:
        yield PrometheusClient(
            session,
            base,
            display_url=display_url,
            timeout=query_timeout,
            max_response_bytes=max_response_bytes,
        )


async def ask(
    *,
    status: int = 200,
    body: bytes = b"",
    exception: Exception | None = None,
    callback: Callback | None = None,
    base: str = BASE,
    display_url: str = BASE,
    query_timeout: float = 5.0,
    max_response_bytes: int = 1 << 20,
) -> QueryResult:
    """One query `up` at AT, answered by a mocked upstream as described."""
    with aioresponses() as mocked:
        mocked.post(
            base + QUERY_PATH, status=status, body=body, exception=exception, callback=callback
        )
        async with prometheus_client(
            base,
            display_url=display_url,
            query_timeout=query_timeout,
            max_response_bytes=max_response_bytes,
        ) as client:
            return await client.query("up", AT, plenty())


async def failure(**answer: Any) -> UpstreamError:
    """The UpstreamError of one query `up` at AT; `answer` as for `ask`."""
    with pytest.raises(UpstreamError) as caught:
        await ask(**answer)
    return caught.value


def closed_loopback_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def never_answers(url: URL, **kwargs: Any) -> CallbackResult:
    await asyncio.sleep(60)
    return CallbackResult(status=200, body=answer("vector", []))


# What the client sends.


async def test_query_is_a_form_post_to_the_query_endpoint() -> None:
    with aioresponses() as mocked:
        mocked.post(BASE + QUERY_PATH, body=answer("vector", []))
        async with prometheus_client(query_timeout=2.5) as client:
            await client.query("sum(rate(x[5m]))", AT, plenty())

        assert mocked.requests is not None
        assert list(mocked.requests) == [("POST", URL(BASE + "/api/v1/query"))]
        [call] = mocked.requests[("POST", URL(BASE + "/api/v1/query"))]
        assert call.kwargs["data"] == {
            "query": "sum(rate(x[5m]))",
            "time": "1767225600.000",
            "timeout": "2500ms",
        }


async def test_base_url_trailing_slash_and_path_prefix_are_kept() -> None:
    with aioresponses() as mocked:
        mocked.post("http://proxy.test/prometheus/api/v1/query", body=answer("vector", []))
        async with prometheus_client("http://proxy.test/prometheus/") as client:
            result = await client.query("up", AT, plenty())

    assert result == QueryResult(samples=(), upstream=BASE)


async def test_instant_is_sent_with_millisecond_precision() -> None:
    with aioresponses() as mocked:
        mocked.post(BASE + QUERY_PATH, body=answer("vector", []))
        async with prometheus_client() as client:
            await client.query("up", AT + 0.1234, plenty())

        assert mocked.requests is not None
        [call] = mocked.requests[("POST", URL(BASE + QUERY_PATH))]
        assert call.kwargs["data"]["time"] == "1767225600.123"


@pytest.mark.parametrize("at", [math.nan, math.inf])
async def test_non_finite_instant_is_refused_before_any_request(at: float) -> None:
    with aioresponses() as mocked:
        async with prometheus_client() as client:
            with pytest.raises(ValueError, match="must be finite"):
                await client.query("up", at, plenty())

        assert mocked.requests == {}


# Answers.


async def test_vector_result_gives_one_sample_per_series_with_its_labels() -> None:
    body = answer(
        "vector",
        [series("12", model="gpt-4o", provider="openai"), series("3.5", model="claude")],
    )

    result = await ask(body=body)

    assert result == QueryResult(
        samples=(
            Sample(labels={"model": "gpt-4o", "provider": "openai"}, value=12.0),
            Sample(labels={"model": "claude"}, value=3.5),
        ),
        upstream=BASE,
    )


async def test_empty_vector_gives_no_samples() -> None:
    assert await ask(body=answer("vector", [])) == QueryResult(samples=(), upstream=BASE)


async def test_series_without_metric_field_has_no_labels() -> None:
    result = await ask(body=answer("vector", [{"value": [AT, "1"]}]))

    assert result.samples == (Sample(labels={}, value=1.0),)


async def test_scalar_result_gives_one_sample_without_labels() -> None:
    result = await ask(body=answer("scalar", [AT, "42"]))

    assert result == QueryResult(samples=(Sample(labels={}, value=42.0),), upstream=BASE)


@pytest.mark.parametrize(
    ("text", "check"),
    [
        pytest.param("NaN", math.isnan, id="NaN"),
        pytest.param("+Inf", lambda value: value == math.inf, id="+Inf"),
        pytest.param("-Inf", lambda value: value == -math.inf, id="-Inf"),
    ],
)
async def test_special_value_strings_parse_to_floats(
    text: str, check: Callable[[float], bool]
) -> None:
    result = await ask(body=answer("vector", [series(text)]))

    [sample] = result.samples
    assert check(sample.value)


async def test_warnings_are_carried_with_the_result() -> None:
    warning = "PromQL info: metric might not be a counter, name does not end in _total"
    body = answer("vector", [series("1")], warnings=[warning])

    result = await ask(body=body)

    assert result.warnings == (warning,)
    assert result.samples == (Sample(labels={}, value=1.0),)


async def test_many_long_warnings_keep_three_shortened_and_say_how_many_more() -> None:
    body = answer("vector", [series("1")], warnings=[f"{n} " + "w" * 5_000 for n in range(100)])

    result = await ask(body=body)

    assert result.warnings == (
        *(f"{n} " + "w" * 198 + "… (cut from 5002 characters)" for n in range(3)),
        "97 more warnings not shown",
    )


# Answers that are not what the API documents.


async def test_truncated_json_is_an_invalid_response() -> None:
    body = answer("vector", [series("1", model="gpt-4o")])[:-10]

    error = await failure(body=body)

    assert isinstance(error, InvalidResponse)
    assert error.reason == "invalid_response"
    assert "HTTP 200, not a Prometheus API answer" in str(error)


async def test_html_error_page_from_a_proxy_is_an_invalid_response_with_an_excerpt() -> None:
    page = (
        b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
        b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
        b"</body>\r\n</html>\r\n"
    )

    error = await failure(status=502, body=page)

    assert isinstance(error, InvalidResponse)
    assert error.reason == "invalid_response"
    assert str(error) == (
        f"{BASE}: HTTP 502, not a Prometheus API answer: <html> <head><title>502 Bad Gateway"
        "</title></head> <body> <center><h1>502 Bad Gateway</h1></center> <hr><center>nginx"
        "</center> </body> </html>"
    )


async def test_excerpt_of_a_long_body_is_cut_at_200_bytes() -> None:
    error = await failure(status=502, body=b"x" * 5_000)

    assert str(error) == f"{BASE}: HTTP 502, not a Prometheus API answer: {'x' * 200}..."


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        pytest.param(503, "unavailable", "the TSDB is still loading", id="503-unavailable"),
        pytest.param(
            422,
            "execution",
            "query processing would load too many samples into memory in query execution",
            id="422-execution",
        ),
        pytest.param(
            400,
            "bad_data",
            'invalid parameter "query": 1:5: parse error: unexpected end of input',
            id="400-bad_data",
        ),
        pytest.param(503, "timeout", "query timed out in expression evaluation", id="503-timeout"),
        pytest.param(503, "canceled", "query was canceled", id="503-canceled"),
        pytest.param(500, "internal", "out of file descriptors", id="500-internal"),
        pytest.param(404, "not_found", "unknown rule group", id="404-not_found"),
        pytest.param(406, "not_acceptable", "unsupported format", id="406-not_acceptable"),
    ],
)
async def test_error_answer_is_a_rejection_labelled_with_its_error_type(
    status: int, error_type: str, message: str
) -> None:
    error = await failure(status=status, body=rejection(error_type, message))

    assert isinstance(error, QueryRejected)
    assert error.reason == error_type
    assert error.error_type == error_type
    assert error.detail == f"{error_type}: {message}"
    assert str(error) == f"{BASE}: {error_type}: {message}"


@pytest.mark.parametrize(
    ("status", "error_type", "reason"),
    [
        pytest.param(422, "422", "execution", id="victoria-metrics-422"),
        pytest.param(400, "400", "bad_data", id="victoria-metrics-400"),
        pytest.param(503, "503", "unavailable", id="victoria-metrics-503"),
        pytest.param(429, "429", "other", id="too-many-requests"),
        pytest.param(422, "Execution", "other", id="not-an-error-type-of-prometheus"),
    ],
)
async def test_a_numeric_error_type_means_what_prometheus_answers_that_status_with(
    status: int, error_type: str, reason: str
) -> None:
    error = await failure(status=status, body=rejection(error_type, "cannot parse"))

    assert isinstance(error, QueryRejected)
    assert error.reason == reason
    assert str(error) == f"{BASE}: {error_type}: cannot parse"


async def test_error_answer_without_error_type_is_labelled_by_its_http_status() -> None:
    error = await failure(status=503, body=b'{"status": "error"}')

    assert isinstance(error, QueryRejected)
    assert error.reason == "unavailable"
    assert str(error) == f"{BASE}: http_503: HTTP 503"


async def test_a_random_error_type_per_answer_is_always_the_one_reason_other() -> None:
    reasons = {
        (await failure(status=418, body=rejection(f"kind-{n}", "x"))).reason for n in range(20)
    }

    assert reasons == {"other"}


async def test_long_error_message_is_cut_at_200_characters_saying_so() -> None:
    error = await failure(status=422, body=rejection("execution", "e" * 5_000))

    assert isinstance(error, QueryRejected)
    assert error.detail == "execution: " + "e" * 200 + "… (cut from 5000 characters)"


async def test_a_megabyte_error_type_is_cut_and_never_the_reason() -> None:
    error = await failure(status=422, body=rejection("t" * 1_000_000, "bad"))

    assert isinstance(error, QueryRejected)
    assert error.reason == "other"
    assert str(error) == f"{BASE}: {'t' * 40}… (cut from 1000000 characters): bad"


async def test_success_answer_with_a_non_200_status_is_an_invalid_response() -> None:
    error = await failure(status=500, body=answer("vector", []))

    assert isinstance(error, InvalidResponse)
    assert "HTTP 500, unexpected answer" in str(error)


@pytest.mark.parametrize(
    ("result_type", "result"),
    [
        pytest.param("matrix", [{"metric": {}, "values": [[AT, "1"]]}], id="matrix"),
        pytest.param("string", [AT, "hello"], id="string"),
    ],
)
async def test_result_types_other_than_vector_or_scalar_are_invalid(
    result_type: str, result: Any
) -> None:
    error = await failure(body=answer(result_type, result))

    assert isinstance(error, InvalidResponse)
    assert f"result type '{result_type}' where an instant vector or scalar was expected" in str(
        error
    )


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        pytest.param([series(1.5)], "malformed sample value", id="value-not-a-string"),
        pytest.param([series(None)], "malformed sample value", id="value-null"),
        pytest.param([{"metric": {}, "value": ["1"]}], "malformed sample value", id="no-time"),
        pytest.param([{"metric": {}}], "malformed sample value", id="no-value"),
        pytest.param([series("fast")], "sample value 'fast' is not a number", id="not-a-number"),
        pytest.param([series("1", code=500)], "series labels are not a string map", id="label-int"),
        pytest.param(
            [{"metric": ["a"], "value": [AT, "1"]}],
            "series labels are not a string map",
            id="labels-a-list",
        ),
        pytest.param(["1"], "vector element is not an object", id="element-not-an-object"),
    ],
)
async def test_malformed_series_is_an_invalid_response(result: Any, problem: str) -> None:
    error = await failure(body=answer("vector", result))

    assert isinstance(error, InvalidResponse)
    assert problem in str(error)


async def test_scalar_with_a_numeric_value_is_an_invalid_response() -> None:
    error = await failure(body=answer("scalar", [AT, 42]))

    assert isinstance(error, InvalidResponse)
    assert "malformed sample value" in str(error)


async def test_answer_over_max_response_bytes_is_too_large() -> None:
    body = answer("vector", [series("1", pad="p" * 2_000)])

    error = await failure(body=body, max_response_bytes=1_024)

    assert isinstance(error, ResponseTooLarge)
    assert error.reason == "too_large"
    assert str(error) == f"{BASE}: answer larger than 1024 bytes (EXPORTER_MAX_RESPONSE_BYTES)"


async def test_answers_sharing_a_budget_fail_once_they_exceed_it_together() -> None:
    body = answer("vector", [series("1", pad="p" * 900)])
    budget = ReadBudget(1_500)

    with aioresponses() as mocked:
        mocked.post(BASE + QUERY_PATH, body=body, repeat=True)
        async with prometheus_client() as client:
            first = await client.query("up", AT, budget)
            with pytest.raises(ResponseTooLarge) as caught:
                await client.query("up", AT, budget)

    assert len(first.samples) == 1
    assert caught.value.detail == (
        "the answers to one refresh exceed 1500 bytes together (EXPORTER_MAX_REFRESH_BYTES)"
    )


async def served_failure(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> UpstreamError:
    """The UpstreamError of one query to a real server on loopback answering with `handler`;
    within 2 s, so a failure that waits for a body that never comes fails the test."""
    app = web.Application()
    app.router.add_post(QUERY_PATH, handler)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        async with prometheus_client(base, display_url=base, max_response_bytes=1_024) as client:
            with pytest.raises(UpstreamError) as caught:
                await asyncio.wait_for(client.query("up", AT, plenty()), timeout=2)
    return caught.value


async def test_a_declared_oversize_body_is_refused_without_waiting_for_it() -> None:
    async def headers_only(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(10**10)})
        await response.prepare(request)
        await asyncio.sleep(30)  # the body never comes
        return response

    assert isinstance(await served_failure(headers_only), ResponseTooLarge)


async def test_a_compressed_answer_is_refused_unread_and_identity_is_asked() -> None:
    asked: list[str] = []

    async def gzipped(request: web.Request) -> web.StreamResponse:
        asked.append(request.headers.get("Accept-Encoding", ""))
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=gzip.compress(answer("vector", [])), headers=headers)

    error = await served_failure(gzipped)

    assert type(error) is InvalidResponse
    assert error.detail == "answer encoded 'gzip' where none was asked"
    assert asked == ["identity"]


async def test_answer_of_exactly_max_response_bytes_is_accepted() -> None:
    empty = answer("vector", [series("1", pad="")])
    body = answer("vector", [series("1", pad="p" * (1_024 - len(empty)))])
    assert len(body) == 1_024

    result = await ask(body=body, max_response_bytes=1_024)

    assert len(result.samples) == 1


# Failures on the way.


async def test_upstream_that_does_not_answer_in_time_is_a_timeout() -> None:
    error = await failure(callback=never_answers, query_timeout=0.05)

    assert isinstance(error, UpstreamTimeout)
    assert error.reason == "timeout"
    assert str(error) == f"{BASE}: no answer within 0.05s"


@pytest.mark.parametrize(
    "exception",
    [
        pytest.param(TimeoutError(), id="asyncio-timeout"),
        pytest.param(aiohttp.ServerTimeoutError("Timeout on reading data"), id="aiohttp-timeout"),
    ],
)
async def test_timeout_raised_by_the_transport_is_a_timeout(exception: Exception) -> None:
    error = await failure(exception=exception, query_timeout=3)

    assert isinstance(error, UpstreamTimeout)
    assert str(error) == f"{BASE}: no answer within 3s"


async def test_refused_connection_is_unreachable() -> None:
    base = f"http://127.0.0.1:{closed_loopback_port()}"

    async with prometheus_client(base, display_url=base) as client:
        with pytest.raises(UpstreamUnreachable) as caught:
            await client.query("up", AT, plenty())

    assert caught.value.reason == "connection"
    assert caught.value.detail.startswith("cannot connect: ")


async def test_server_disconnect_is_unreachable() -> None:
    error = await failure(exception=aiohttp.ServerDisconnectedError())

    assert isinstance(error, UpstreamUnreachable)
    assert error.reason == "connection"
    assert str(error) == f"{BASE}: server disconnected"


async def test_broken_response_body_is_an_invalid_response() -> None:
    error = await failure(exception=aiohttp.ClientPayloadError("Response payload is not completed"))

    assert isinstance(error, InvalidResponse)
    assert str(error).startswith(f"{BASE}: broken response body: ")


# Credentials.


async def test_messages_name_the_display_url_given_by_the_caller() -> None:
    error = await failure(status=502, body=b"Bad Gateway", display_url="upstream-A")

    assert error.upstream == "upstream-A"
    assert str(error).startswith("upstream-A: HTTP 502")


@pytest.mark.parametrize(
    ("status", "body", "exception", "callback"),
    [
        pytest.param(200, b"", None, never_answers, id="timeout"),
        pytest.param(200, b"", aiohttp.ServerDisconnectedError(), None, id="disconnected"),
        pytest.param(200, b"", aiohttp.ClientConnectionError("boom"), None, id="connection"),
        pytest.param(502, b"<html>Bad Gateway</html>", None, None, id="html"),
        pytest.param(503, rejection("unavailable", "down"), None, None, id="rejected"),
        pytest.param(200, answer("matrix", []), None, None, id="matrix"),
        pytest.param(200, b"x" * 2_000, None, None, id="too-large"),
    ],
)
async def test_password_in_the_base_url_never_reaches_an_error_message(
    status: int, body: bytes, exception: Exception | None, callback: Callback | None
) -> None:
    error = await failure(
        status=status,
        body=body,
        exception=exception,
        callback=callback,
        base=BASE_WITH_PASSWORD,
        display_url=BASE,
        query_timeout=0.05,
        max_response_bytes=1_024,
    )

    assert error.upstream == BASE
    assert SECRET not in str(error)


async def test_password_never_reaches_the_message_of_a_refused_connection() -> None:
    port = closed_loopback_port()
    base = f"http://admin:{SECRET}@127.0.0.1:{port}"

    async with prometheus_client(base, display_url=f"http://127.0.0.1:{port}") as client:
        with pytest.raises(UpstreamUnreachable) as caught:
            await client.query("up", AT, plenty())

    assert SECRET not in str(caught.value)


# Known bugs (see the reasons).


async def test_valid_answer_arriving_in_several_chunks_is_read_whole() -> None:
    body = answer("vector", [series("1", model=f"model-{i}") for i in range(100)])

    async def two_chunks(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(body[: len(body) // 2])
        await asyncio.sleep(0.05)
        await response.write(body[len(body) // 2 :])
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post(QUERY_PATH, two_chunks)
    async with TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("/"))
        async with prometheus_client(base, display_url=base) as client:
            result = await client.query("up", AT, plenty())

    assert len(result.samples) == 100


async def test_answer_that_is_not_http_is_an_upstream_error() -> None:
    async def not_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1_024)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_http, "127.0.0.1", 0)
    async with server:
        base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        async with prometheus_client(base, display_url=base) as client:
            with pytest.raises(UpstreamError):
                await client.query("up", AT, plenty())


async def test_unusable_base_url_is_an_upstream_error_without_the_password() -> None:
    base = f"http://admin:{SECRET}@prometheus.test:port"

    async with prometheus_client(base, display_url="http://prometheus.test:port") as client:
        with pytest.raises(UpstreamError) as caught:
            await client.query("up", AT, plenty())

    assert SECRET not in str(caught.value)
