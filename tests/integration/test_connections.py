"""Connections a client can open at will: the process stays within its limit of open files,
and a new client is answered promptly however many others hold connections open."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from harness.hostile_upstream import HostileUpstreamProcess
from harness.servers import ExporterProcess, require_binary

pytestmark = pytest.mark.integration

OPEN_FILES = 256
FLOOD_SECONDS = 4.0


@pytest.fixture
def exporter(tmp_path: Path, upstream: HostileUpstreamProcess) -> Iterator[ExporterProcess]:
    """The exporter with a soft and hard limit of OPEN_FILES open files."""
    launcher = (
        require_binary("prlimit", "apt-get install -y util-linux"),
        f"--nofile={OPEN_FILES}",
    )
    variables = {
        "EXPORTER_PROMETHEUS_URL": upstream.url,
        "EXPORTER_REFRESH_INTERVAL": "1",
        "EXPORTER_HEADER_TIMEOUT": "1",
    }
    with ExporterProcess.start(tmp_path / "exporter", variables, launcher=launcher) as process:
        yield process


def port_of(exporter: ExporterProcess) -> int:
    return int(exporter.url.rsplit(":", 1)[1])


async def test_a_new_client_is_answered_within_2s_during_a_flood_of_half_open_connections(
    exporter: ExporterProcess,
) -> None:
    flood = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.connection_flood", "--port", str(port_of(exporter)),
        "--connections", str(OPEN_FILES + 100), "--seconds", str(FLOOD_SECONDS),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        await asyncio.sleep(0.5)  # the flood is at its height
        slowest, statuses, most_descriptors = 0.0, [], 0
        timeout = aiohttp.ClientTimeout(total=5)
        deadline = time.monotonic() + FLOOD_SECONDS - 1.5
        for _ in range(100):
            if time.monotonic() > deadline:
                break
            # A new client each time, on a new connection.
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for path in ("/healthz", "/summary"):
                    started = time.monotonic()
                    async with session.get(f"{exporter.url}{path}") as answer:
                        await answer.read()
                        statuses.append(answer.status)
                    slowest = max(slowest, time.monotonic() - started)
            most_descriptors = max(most_descriptors, len(os.listdir(f"/proc/{exporter.pid}/fd")))
            await asyncio.sleep(0.1)
        output, _ = await asyncio.wait_for(flood.communicate(), timeout=FLOOD_SECONDS + 10)
        counts = json.loads(output)
    finally:
        if flood.returncode is None:
            flood.kill()
            await flood.wait()
    assert len(statuses) >= 10
    assert set(statuses) == {200}
    assert slowest < 2.0
    assert counts["opened"] >= OPEN_FILES + 100
    assert counts["closed_by_server"] > 0  # the oldest were shed to make room
    assert most_descriptors < OPEN_FILES
    log = exporter.log_text()
    assert "Traceback" not in log
    assert "Too many open files" not in log
    # Connection events are logged at most once a second each.
    closed = [line for line in log.splitlines() if "event=connection_closed" in line]
    assert 1 <= len(closed) <= 2 * (FLOOD_SECONDS + 2)


async def test_a_connection_without_a_request_is_closed_after_the_header_timeout(
    exporter: ExporterProcess,
) -> None:
    silent = socket.create_connection(("127.0.0.1", port_of(exporter)))
    partial = socket.create_connection(("127.0.0.1", port_of(exporter)))
    try:
        partial.sendall(b"GET /summary HTTP/1.1\r\nHost: slow\r\n")
        started = time.monotonic()
        silent.settimeout(5)
        partial.settimeout(5)
        assert silent.recv(1) == b""
        assert partial.recv(1) == b""
        assert time.monotonic() - started < 2.5  # EXPORTER_HEADER_TIMEOUT is 1 s
    finally:
        silent.close()
        partial.close()


async def test_a_malformed_request_is_a_400_and_one_warning_line_without_a_traceback(
    exporter: ExporterProcess,
) -> None:
    answers = []
    for _ in range(20):
        with socket.create_connection(("127.0.0.1", port_of(exporter))) as sock:
            sock.sendall(b"GET /summary HTTP/1.1\r\nHost: x\r\nBad\x00Header: 1\r\n\r\n")
            sock.settimeout(5)
            answers.append(sock.recv(4096))
    assert all(answer.startswith(b"HTTP/1.0 400 Bad Request") for answer in answers)
    log = exporter.log_text()
    assert "Traceback" not in log
    bad = [line for line in log.splitlines() if "event=bad_request" in line]
    # The others of the same second are counted in the next line, not logged each.
    assert 1 <= len(bad) <= 2
    assert "level=WARNING" in bad[0]
