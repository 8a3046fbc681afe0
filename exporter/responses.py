"""JSON answers, errors included: every error is `{"error": ...}`, a client's mistake never a 500.

Errors are turned into answers by the routes themselves (`answering`), not by a middleware:
an aiohttp middleware runs on every request, and costs each two coroutines.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from exporter.errors import Busy, InvalidRequest
from exporter.server import Connection
from exporter.strict_json import encode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = logging.getLogger("exporter.app")

JSON = "application/json"
_KEPT_ERROR_HEADERS = frozenset({"allow", "retry-after", "www-authenticate"})


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(body=encode(data), status=status, headers=headers, content_type=JSON)


def error_response(request: web.Request, error: Exception) -> web.Response:
    """The JSON answer to an error a handler raised; re-raises what is not an error answer."""
    if isinstance(error, InvalidRequest):
        return json_response({"error": str(error)}, status=400)
    if isinstance(error, Busy):
        retry = {"Retry-After": str(error.retry_after)}
        return json_response({"error": str(error)}, status=429, headers=retry)
    if isinstance(error, web.HTTPException) and error.status >= 400:
        headers = {k: v for k, v in error.headers.items() if k.lower() in _KEPT_ERROR_HEADERS}
        return json_response({"error": error.reason}, status=error.status, headers=headers)
    if isinstance(error, web.HTTPException | ConnectionResetError):
        # A redirect is an answer, and a client that went away needs none.
        raise error
    log.exception("event=request_failed path=%s", request.path, exc_info=error)
    return json_response({"error": "internal error; see the exporter's log"}, status=500)


def answering(handler: Handler) -> Handler:
    """`handler` as a route: the errors it raises answered in JSON, and its connection marked
    as answering a request while it runs, which the connection guard (exporter/server.py)
    never sheds. Outside that guard (a test client), the mark is left out."""

    @functools.wraps(handler)
    async def answer(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        protocol = None if transport is None else transport.get_protocol()
        connection = protocol if isinstance(protocol, Connection) else None
        if connection is not None:
            connection.started()
        try:
            return await handler(request)
        except Exception as error:
            return error_response(request, error)
        finally:
            if connection is not None:
                connection.finished()

    return answer


async def no_route(request: web.Request) -> web.StreamResponse:
    """The last route, matching any path: 405 with Allow when another route has the path,
    404 otherwise, both in JSON, as aiohttp's own plain-text answers would not be."""
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            _, methods = await resource.resolve(request)
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise web.HTTPNotFound()
