"""An upstream that answers the Prometheus query API the way an attacker, or a broken proxy,
would: oversize, slow, compressed, deeply nested, flooded with warnings, series or headers.

It runs as a process of its own on loopback (`python -m harness.hostile_upstream --port N`),
so that the exporter's memory is measured apart from it. The hostile answer is chosen by
`POST /-/mode` with the mode's name as the body; `proxy` passes every query on to a real
Prometheus (`--prometheus URL`), and `mixed` answers each query with the next mode in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import random
import string
import sys
import zlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from harness.servers import ServerProcess, free_port

Answer = Callable[[web.Request, bool], Awaitable[web.StreamResponse]]

_VECTOR_HEAD = b'{"status":"success","data":{"resultType":"vector","result":['
_MIB = 1024 * 1024


def _success(result_type: str, result: Any, **extra: Any) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": result_type, "result": result}, **extra}


def _text(length: int) -> str:
    # Quotes, backslashes, controls and characters outside the BMP: the most costly to encode.
    alphabet = string.ascii_letters + '"\\\x00\x1f\U0001f600é'
    return "".join(random.choices(alphabet, k=length))


async def _json(request: web.Request, document: Any, status: int = 200) -> web.Response:
    return web.json_response(document, status=status)


async def _healthy(request: web.Request, ranged: bool) -> web.StreamResponse:
    form = await request.post()
    if ranged:
        start, step = float(str(form["start"])), float(str(form["step"]))
        values = [[start + i * step, "1"] for i in range(61)]
        return await _json(request, _success("matrix", [{"metric": {}, "values": values}]))
    return await _json(request, _success("vector", [{"metric": {}, "value": [0, "1"]}]))


async def _stream(
    request: web.Request, head: bytes, filler: bytes, total: int
) -> web.StreamResponse:
    """`head`, then `filler` until `total` bytes or until the client hangs up."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(head)
    sent = len(head)
    try:
        while sent < total:
            await response.write(filler)
            sent += len(filler)
    except (ConnectionError, aiohttp.ClientConnectionResetError):
        pass  # the client stopped reading, as it should
    return response


async def _oversize(request: web.Request, ranged: bool) -> web.StreamResponse:
    element = b'{"metric":{},"value":[0,"1"]},'
    return await _stream(request, _VECTOR_HEAD, element * 2048, 512 * _MIB)


async def _declared_oversize(request: web.Request, ranged: bool) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "application/json", "Content-Length": str(64 * 1024 * _MIB)}
    )
    await response.prepare(request)
    await response.write(_VECTOR_HEAD)
    await asyncio.sleep(3600)
    return response


def _fixed(build: Callable[[bool], Any], status: int = 200) -> Answer:
    """An answer that is the same for every query (one for instant, one for range queries),
    encoded once: the upstream must keep up with the exporter, not measure itself."""
    bodies = functools.cache(lambda ranged: json.dumps(build(ranged)).encode())

    async def answer(request: web.Request, ranged: bool) -> web.StreamResponse:
        return web.Response(body=bodies(ranged), status=status, content_type="application/json")

    return answer


def _one_series(ranged: bool, **extra: Any) -> dict[str, Any]:
    if ranged:
        return _success("matrix", [{"metric": {}, "values": [[0, "1"]]}], **extra)
    return _success("vector", [{"metric": {}, "value": [0, "1"]}], **extra)


def _many_series(ranged: bool) -> dict[str, Any]:
    labels = [{"model": f"model-{n}", "provider": f"p{n}"} for n in range(150)]
    if ranged:
        return _success("matrix", [{"metric": m, "values": [[0, "1"]]} for m in labels])
    return _success("vector", [{"metric": m, "value": [0, "1"]} for m in labels])


@functools.cache
def _most_text_body(labels: bool) -> bytes:
    # One more warning and one more label value than are kept (with EXPORTER_MAX_ENTITIES at
    # its default), each as long as is kept, of the character that costs most to encode (12
    # bytes once escaped in JSON); sent as UTF-8, so that a refresh's answers fit its budget.
    costly = "\U0001f600"
    if labels:
        series = [
            {"metric": {"model": costly * 124 + f"{n:04d}"}, "value": [0, str(n)]}
            for n in range(51)
        ]
    else:
        series = [{"metric": {}, "value": [0, "1"]}]
    document = _success("vector", series, warnings=[costly * 200 for _ in range(4)])
    return json.dumps(document, ensure_ascii=False).encode()


async def _most_text(request: web.Request, ranged: bool) -> web.StreamResponse:
    """What fits every bound on reading and keeps the most text in the document: as many
    warnings as are kept, and as many label values for a query of top label values."""
    labels = "topk" in str((await request.post()).get("query", ""))
    return web.Response(body=_most_text_body(labels), content_type="application/json")


async def _random_error_type(request: web.Request, ranged: bool) -> web.StreamResponse:
    document = {"status": "error", "errorType": _text(12), "error": "no"}
    return await _json(request, document, status=random.choice([400, 418, 422, 500, 503]))


@functools.lru_cache(maxsize=4)
def _points_until(end: float) -> bytes:
    values = [[round(end - n / 10, 1), "1"] for n in range(10_000)]
    return json.dumps(_success("matrix", [{"metric": {}, "values": values}])).encode()


async def _many_points(request: web.Request, ranged: bool) -> web.StreamResponse:
    """Ten points a second over the sparklines' hour, which ends at the `end` asked; an
    instant query gets a matrix too, a short one."""
    if not ranged:
        return await _json(request, _success("matrix", [{"metric": {}, "values": [[0, "1"]]}]))
    end = float(str((await request.post())["end"]))
    return web.Response(body=_points_until(end), content_type="application/json")


async def _deep_nesting(request: web.Request, ranged: bool) -> web.StreamResponse:
    # Far past the parser's recursion limit, and 12 KB: a refresh's 70 answers fit its budget.
    depth = 6_000
    body = b'{"status":"success","data":' + b"[" * depth + b"]" * depth + b"}"
    return web.Response(body=body, content_type="application/json")


async def _slow_body(request: web.Request, ranged: bool) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    try:
        for byte in _VECTOR_HEAD:
            await response.write(bytes([byte]))
            await asyncio.sleep(0.5)
    except (ConnectionError, aiohttp.ClientConnectionResetError):
        pass
    return response


def _bomb() -> bytes:
    """A valid JSON start, then 256 MiB of spaces, gzipped to a quarter of a megabyte."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: the gzip container
    parts = [compressor.compress(_VECTOR_HEAD)]
    block = b" " * (16 * _MIB)
    parts += [compressor.compress(block) for _ in range(16)]
    parts.append(compressor.flush())
    return b"".join(parts)


# Compressed while the server starts, off its event loop: it takes most of a second.
BOMB = web.AppKey("bomb", asyncio.Task[bytes])


async def _gzip_bomb(request: web.Request, ranged: bool) -> web.StreamResponse:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    compressing = request.app[BOMB]
    return web.Response(body=await compressing, headers=headers)


async def _compress_bomb(app: web.Application) -> None:
    app[BOMB] = asyncio.create_task(asyncio.to_thread(_bomb))


async def _header_flood(request: web.Request, ranged: bool) -> web.StreamResponse:
    headers = {f"X-Flood-{n}": "v" * 100 for n in range(2_000)}
    return web.Response(body=b"{}", headers=headers, content_type="application/json")


async def _never_answers(request: web.Request, ranged: bool) -> web.StreamResponse:
    await asyncio.sleep(3600)
    return web.Response()


HOSTILE: dict[str, Answer] = {
    "oversize": _oversize,
    "declared_oversize": _declared_oversize,
    "huge_warning": _fixed(lambda ranged: _one_series(ranged, warnings=["w" * 10_000])),
    "many_warnings": _fixed(lambda ranged: _one_series(ranged, warnings=["w"] * 2_000)),
    "long_error": _fixed(
        lambda _: {"status": "error", "errorType": _text(3_000), "error": _text(3_000)},
        status=422,
    ),
    "random_error_type": _random_error_type,
    "many_series": _fixed(_many_series),
    "long_labels": _fixed(
        lambda _: _success(
            "vector", [{"metric": {"model": _text(500)}, "value": [0, "1"]} for _ in range(10)]
        )
    ),
    "most_text": _most_text,
    "many_points": _many_points,
    "deep_nesting": _deep_nesting,
    "slow_body": _slow_body,
    "gzip_bomb": _gzip_bomb,
    "header_flood": _header_flood,
    "never_answers": _never_answers,
}
MODES = ("healthy", "proxy", "mixed", *HOSTILE)


class Upstream:
    """The server's state: the mode, and where `proxy` sends queries."""

    def __init__(self, prometheus: str | None) -> None:
        self.mode = "healthy"
        self._prometheus = prometheus
        self._turns: Iterator[Answer] = itertools.cycle(HOSTILE.values())
        self._session: aiohttp.ClientSession | None = None

    async def set_mode(self, request: web.Request) -> web.Response:
        mode = (await request.text()).strip()
        if mode not in MODES or (mode == "proxy" and self._prometheus is None):
            return web.Response(status=400, text=f"unknown mode {mode!r}")
        self.mode = mode
        return web.Response(text=mode)

    async def answer(self, request: web.Request) -> web.StreamResponse:
        ranged = request.path.endswith("/query_range")
        if self.mode == "proxy":
            return await self._proxy(request)
        if self.mode == "mixed":
            return await next(self._turns)(request, ranged)
        if self.mode == "healthy":
            return await _healthy(request, ranged)
        return await HOSTILE[self.mode](request, ranged)

    async def _proxy(self, request: web.Request) -> web.StreamResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        form = dict(await request.post())
        try:
            async with self._session.post(f"{self._prometheus}{request.path}", data=form) as answer:
                body = await answer.read()
                status = answer.status
        except aiohttp.ClientError:
            return web.Response(status=502, text="Prometheus is down")
        return web.Response(status=status, body=body, content_type="application/json")


def application(prometheus: str | None) -> web.Application:
    upstream = Upstream(prometheus)
    app = web.Application()
    app.on_startup.append(_compress_bomb)
    app.router.add_post("/-/mode", upstream.set_mode)
    app.router.add_get("/-/ready", lambda _: _ready())
    app.router.add_post("/api/v1/query", upstream.answer)
    app.router.add_post("/api/v1/query_range", upstream.answer)
    return app


async def _ready() -> web.Response:
    return web.Response(text="ready")


class HostileUpstreamProcess(ServerProcess):
    """The hostile upstream as a child process on a free loopback port."""

    @classmethod
    def start(cls, workdir: Path, prometheus: str | None = None) -> HostileUpstreamProcess:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = [sys.executable, "-m", "harness.hostile_upstream", "--port", str(port)]
        argv += ["--prometheus", prometheus] if prometheus else []
        return cls(argv, port, workdir / "hostile-upstream.log", "/-/ready")

    async def set_mode(self, session: aiohttp.ClientSession, mode: str) -> None:
        async with session.post(f"{self.url}/-/mode", data=mode) as response:
            if response.status != 200:
                raise ValueError(await response.text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--prometheus", help="where `proxy` sends the queries")
    arguments = parser.parse_args()
    web.run_app(
        application(arguments.prometheus),
        host="127.0.0.1",
        port=arguments.port,
        print=None,
        # Answers that never end must not hold up a stop.
        shutdown_timeout=0.1,
    )


if __name__ == "__main__":
    main()
