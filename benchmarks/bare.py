"""A bare aiohttp app serving fixed bytes at /summary: what the exporter is held against.

Usage: python -m benchmarks.bare PORT BODY_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

from exporter.cli import LISTEN_BACKLOG


def create_app(body: bytes) -> web.Application:
    async def summary(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/summary", summary)
    return app


def main(argv: list[str]) -> int:
    port, body_file = int(argv[0]), Path(argv[1])
    # Run as the exporter runs (exporter/cli.py): the same backlog, no access log.
    web.run_app(
        create_app(body_file.read_bytes()),
        host="127.0.0.1",
        port=port,
        backlog=LISTEN_BACKLOG,
        access_log=None,
        print=None,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
