"""A bare aiohttp app serving fixed bytes at /summary: what the exporter is held against.

Usage: python -m benchmarks.bare PORT BODY_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

from aiohttp import web

from exporter.cli import LISTEN_BACKLOG


def main(port: int, body: bytes) -> None:
    async def summary(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/summary", summary)
    # Run as the exporter runs (exporter/cli.py): the same backlog, no access log.
    web.run_app(
        app, host="127.0.0.1", port=port, backlog=LISTEN_BACKLOG, access_log=None, print=None
    )


if __name__ == "__main__":
    main(int(sys.argv[1]), Path(sys.argv[2]).read_bytes())
