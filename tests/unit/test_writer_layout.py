"""The writer behind each answered request keeps its class's shared attribute layout.

Each case runs in a fresh interpreter: the layout is fixed once per process, by the first
instances of the class, so the test process's own history would decide the outcome.
"""

from __future__ import annotations

import os
import subprocess
import sys

from exporter.catalog import Catalog
from tests.exporter_client import distinct_queries

# One writer per query made at once, as a refresh does, then one answer written by the server.
SCENARIO = """
import asyncio, sys
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http import StreamWriter
from multidict import CIMultiDict
from exporter.settings import Settings
from exporter.upstream import session_for

class Discard(asyncio.Transport):
    def write(self, data): pass
    def is_closing(self): return False

async def main(queries: int, session_first: bool) -> None:
    loop = asyncio.get_running_loop()
    def writer():
        protocol = BaseProtocol(loop)
        protocol.connection_made(Discard())
        return StreamWriter(protocol, loop)
    if session_first:
        await session_for(Settings()).close()
    burst = [writer() for _ in range(queries)]
    for request in burst:
        await request.write_headers("POST /api/v1/query HTTP/1.1", CIMultiDict())
        await request.write_eof(b"query=up")
    answer = writer()
    answer.length = 2
    await answer.write_headers("HTTP/1.1 200 OK", CIMultiDict())
    await answer.write_eof(b"{}")
    # A dict that shares the class's keys is smaller than a copy of it with keys of its own.
    print("shared" if sys.getsizeof(vars(answer)) < sys.getsizeof(dict(vars(answer))) else "own")

asyncio.run(main(int(sys.argv[1]), sys.argv[2] == "session"))
"""


def _answer_layout(catalog: Catalog, first: str) -> str:
    queries = len(distinct_queries(catalog, "5m"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    result = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(queries), first],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_a_refresh_burst_alone_leaves_each_answer_writer_a_dict_of_its_own(
    catalog: Catalog,
) -> None:
    # What the session's settling prevents; if an interpreter stops doing this, it can go.
    assert _answer_layout(catalog, "burst") == "own"


def test_after_the_upstream_session_is_made_answer_writers_share_the_class_layout(
    catalog: Catalog,
) -> None:
    assert _answer_layout(catalog, "session") == "shared"
