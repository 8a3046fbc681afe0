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
    default: Any = field(default_factory=list)  # an empty vector
    delay: float = 0.0
    error: tuple[int, str, str] | None = None  # (HTTP status, errorType, error)
    asked: list[tuple[str, str]] = field(default_factory=list)  # (query, time)
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
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            status, error_type, message = self.error
            body = {"status": "error", "errorType": error_type, "error": message}
            return web.json_response(body, status=status)
        result = self.answers.get(query, self.default)
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    async def start(self) -> FakePrometheus:
        app = web.Application()
        app.router.add_post("/api/v1/query", self._query)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()


def scalar_vector(value: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """A one-element instant vector, the way Prometheus writes it (value as a string)."""
    return [{"metric": labels or {}, "value": [1767225600, value]}]
