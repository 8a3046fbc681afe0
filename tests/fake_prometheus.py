"""A stand-in for the Prometheus query API on loopback, for tests about the service itself.

It answers every instant query from a table (PromQL → value), records what it was asked,
and can be told to answer slowly or with an error, which a real server does not do on cue.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class FakePrometheus:
    answers: dict[str, Any] = field(default_factory=dict)  # PromQL → vector result
    ranges: dict[str, Any] = field(default_factory=dict)  # PromQL → matrix result
    asked_ranges: list[tuple[str, str, str, str]] = field(default_factory=list)  # query, range
    default: Any = field(default_factory=list)  # an empty vector
    delay: float = 0.0
    error: tuple[int, str, str] | None = None  # (HTTP status, errorType, error)
    raw: tuple[int, str, bytes] | None = None  # (HTTP status, content type, body) as is
    failing: str | None = None  # only queries containing this text get `error` / `raw`
    asked: list[tuple[str, str]] = field(default_factory=list)  # (query, time)
    requests: list[dict[str, str]] = field(default_factory=list)  # headers and form, by request
    server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")

    def queries(self) -> list[str]:
        return [query for query, _ in self.asked]

    async def _query(self, request: web.Request) -> web.Response:
        form = await request.post()
        query, at = str(form["query"]), str(form["time"])
        self.asked.append((query, at))
        self.requests.append({**request.headers, **{k: str(v) for k, v in form.items()}})
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing is not None and self.failing not in query:
            return self._answer(query)
        if self.raw is not None:
            status, content_type, body = self.raw
            return web.Response(status=status, body=body, content_type=content_type)
        if self.error is not None:
            status, error_type, message = self.error
            error = {"status": "error", "errorType": error_type, "error": message}
            return web.json_response(error, status=status)
        return self._answer(query)

    async def _query_range(self, request: web.Request) -> web.Response:
        form = await request.post()
        query = str(form["query"])
        self.asked_ranges.append((query, str(form["start"]), str(form["end"]), str(form["step"])))
        if self.error is not None:
            status, error_type, message = self.error
            error = {"status": "error", "errorType": error_type, "error": message}
            return web.json_response(error, status=status)
        result = self.ranges.get(query, [])
        return web.json_response(
            {"status": "success", "data": {"resultType": "matrix", "result": result}}
        )

    def _answer(self, query: str) -> web.Response:
        result = self.answers.get(query, self.default)
        # A range selector (the recorded series' samples) is a matrix, anything else a vector.
        kind = "matrix" if query.endswith("]") else "vector"
        return web.json_response(
            {"status": "success", "data": {"resultType": kind, "result": result}}
        )

    async def start(self) -> FakePrometheus:
        app = web.Application()
        app.router.add_post("/api/v1/query", self._query)
        app.router.add_post("/api/v1/query_range", self._query_range)
        # The same API below a path prefix, as Mimir serves it (/prometheus).
        app.router.add_post("/prometheus/api/v1/query", self._query)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


def scalar_vector(value: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A one-element instant vector, the way Prometheus writes it (value as a string)."""
    return [{"metric": labels or {}, "value": [1767225600, value]}]
