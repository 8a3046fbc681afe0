"""Signals sent to a real `python -m exporter serve` process, as an orchestrator sends them."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from harness.hostile_upstream import HostileUpstreamProcess
from harness.servers import ExporterProcess, wait_for
from tests.conftest import write_catalog_with

pytestmark = pytest.mark.integration


def gauge(exposition: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", exposition, re.MULTILINE)
    assert found, name
    return float(found.group(1))


async def get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as response:
        if response.content_type == "application/json":
            return await response.json()
        return await response.text()


async def test_sighup_reloads_a_valid_catalog_at_the_next_refresh_and_keeps_it_when_invalid(
    tmp_path: Path, upstream: HostileUpstreamProcess
) -> None:
    catalog = tmp_path / "catalog.yaml"
    write_catalog_with(catalog, "probe", "vector(1)")
    variables = {
        "EXPORTER_PROMETHEUS_URL": upstream.url,
        "EXPORTER_CATALOG": str(catalog),
        "EXPORTER_REFRESH_INTERVAL": "1",
    }
    with ExporterProcess.start(tmp_path / "exporter", variables) as exporter:
        async with aiohttp.ClientSession() as session:
            before = await get(session, f"{exporter.url}/metrics")
            assert gauge(before, "summary_exporter_catalog_reload_success") == 1

            write_catalog_with(catalog, "probe_renamed", "vector(2)")
            exporter.signal(signal.SIGHUP)
            document: dict[str, Any] = {}
            for _ in range(40):  # the next refresh, within a second or so
                document = await get(session, f"{exporter.url}/summary?explain=1")
                if "probe_renamed" in document["metrics"]["http"]:
                    break
                await asyncio.sleep(0.1)
            assert "probe" not in document["metrics"]["http"]
            assert document["explain"]["http.probe_renamed"]["promql"] == "vector(2)"
            reloaded = await get(session, f"{exporter.url}/metrics")
            assert gauge(reloaded, "summary_exporter_catalog_reload_success") == 1
            loaded_at = gauge(reloaded, "summary_exporter_catalog_reload_timestamp_seconds")
            assert loaded_at > gauge(before, "summary_exporter_catalog_reload_timestamp_seconds")
            assert "summary_http_probe_renamed " in reloaded

            catalog.write_text("domains: [this is not a catalog")
            exporter.signal(signal.SIGHUP)
            assert wait_for(lambda: "event=catalog_reload_failed" in exporter.log_text(), 5)
            refused = await get(session, f"{exporter.url}/metrics")
            assert gauge(refused, "summary_exporter_catalog_reload_success") == 0
            assert gauge(refused, "summary_exporter_catalog_reload_timestamp_seconds") == loaded_at
            await asyncio.sleep(
                1.2
            )  # a refresh later, the catalog in force is still the last good one
            kept = await get(session, f"{exporter.url}/summary")
            assert "probe_renamed" in kept["metrics"]["http"]
        assert exporter.running()
    assert f"{catalog}" in exporter.log_text()


@pytest.mark.parametrize("grace", [0, 1])
async def test_sigterm_ends_the_answers_in_flight_after_the_grace_and_exits_0(
    tmp_path: Path, upstream: HostileUpstreamProcess, grace: int
) -> None:
    variables = {
        "EXPORTER_PROMETHEUS_URL": upstream.url,
        "EXPORTER_SHUTDOWN_GRACE": str(grace),
        # Longer than the grace: the answers in flight cannot finish in time.
        "EXPORTER_QUERY_TIMEOUT": "30",
        "EXPORTER_REFRESH_INTERVAL": "60",
    }
    with ExporterProcess.start(tmp_path / "exporter", variables) as exporter:
        async with aiohttp.ClientSession() as session:
            await upstream.set_mode(session, "never_answers")
            in_flight = [
                asyncio.ensure_future(get(session, f"{exporter.url}{path}"))
                for path in ("/summary?window=1h", "/?time=1767225600", "/health?window=2h")
            ]
            await asyncio.sleep(0.5)
            assert not any(request.done() for request in in_flight)
            signalled = time.monotonic()
            exporter.signal(signal.SIGTERM)
            status = await asyncio.to_thread(exporter.wait, grace + 5)
            took = time.monotonic() - signalled
            for request in in_flight:
                with contextlib.suppress(aiohttp.ClientError):
                    await request
    assert status == 0
    assert f"event=stop_forced after={grace}s" in exporter.log_text()
    # Far sooner than the 30 s the answers in flight would take. The exit time itself (the
    # grace and 0.8 s at most) is measured in docs/reliability.md: a loaded machine adds its
    # own scheduling delay to a wall clock read from outside the process.
    assert took < grace + 5
