"""A bare aiohttp app serving fixed bytes at /summary: the ceiling the exporter is held to.

Usage: python -m benchmarks.bare PORT BODY_FILE BACKLOG
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

from benchmarks.common import HOST


def create_app(body: bytes) -> web.Application:
    async def summary(request: web.Request) -> web.Response:
        # The same response object the exporter builds: bytes with a JSON content type.
        return web.Response(body=body, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(body=b'{"status":"ok"}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/summary", summary)
    app.router.add_get("/healthz", healthz)
    return app


def main(argv: list[str]) -> int:
    port, body_file, backlog = int(argv[0]), Path(argv[1]), int(argv[2])
    # No access log and the same listen backlog, as the exporter runs (see cli.serve).
    web.run_app(
        create_app(body_file.read_bytes()),
        host=HOST,
        port=port,
        backlog=backlog,
        access_log=None,
        print=None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
