"""(c) Memory and start-up: RSS idle, under load and across series counts; time to serve.

RSS is the exporter process' VmRSS (resident now) and VmHWM (its peak so far), from /proc.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Section, ratio, start_exporter, wait_until_fresh, wrk
from harness.servers import memory_kib

LIMIT_MIB = 80.0
# Flat: RSS at the largest tier within 10 % of RSS at the smallest.
FLAT = 1.10
# deploy/kubernetes probes liveness after 5 s (initialDelaySeconds).
START_LIMIT_S = 5.0
CONNECTIONS = 1000
# Room for every client and the probes that poll meanwhile: beyond EXPORTER_MAX_CONNECTIONS
# (512 as shipped) the exporter sheds idle connections on purpose, which wrk counts as errors.
MAX_CONNECTIONS = CONNECTIONS + 100
TIER_INTERVAL_S = 5


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    return memory_kib(pid) / 1024, memory_kib(pid, "VmHWM") / 1024


def start_times(url: str, workdir: Path, repeats: int) -> list[tuple[float, float]]:
    """Seconds from spawning `python -m exporter serve` to the first 200 on /readyz (polled
    every 50 ms), and to the first fresh /summary (polled every 5 ms)."""
    starts = []
    for turn in range(repeats):
        spawned = time.perf_counter()
        with start_exporter(url, workdir / f"start-{turn}") as exporter:
            ready = time.perf_counter() - spawned
            wait_until_fresh(exporter, interval=0.005)
            starts.append((ready, time.perf_counter() - spawned))
    return starts


@dataclass(frozen=True)
class UnderLoad:
    requests: int
    errors: int
    idle_mib: float
    peak_mib: float  # VmHWM after the load: the highest RSS the process ever had


def under_load(url: str, workdir: Path) -> UnderLoad:
    variables = {"EXPORTER_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}
    with start_exporter(url, workdir / "under-load", variables) as exporter:
        wait_until_fresh(exporter)
        time.sleep(1)  # the first refresh's garbage collected
        idle = rss_mib(exporter.pid)[0]
        run = wrk(exporter.url + "/summary", CONNECTIONS, 5)
        return UnderLoad(run.requests, run.errors, idle, rss_mib(exporter.pid)[1])


def at_tier(url: str, workdir: Path) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the exporter on a tier's Prometheus after three refreshes."""
    interval = {"EXPORTER_REFRESH_INTERVAL": str(TIER_INTERVAL_S)}
    with start_exporter(url, workdir, interval) as exporter:
        wait_until_fresh(exporter)
        time.sleep(2 * TIER_INTERVAL_S)
        return rss_mib(exporter.pid)


def section(
    starts: list[tuple[float, float]], load: UnderLoad, tiers: dict[int, tuple[float, float]]
) -> Section:
    result = Section("Memory and start-up")
    ready = statistics.median(ready for ready, _ in starts)
    fresh = statistics.median(fresh for _, fresh in starts)
    result.add(
        f"Start-up: from spawning `python -m exporter serve` (on the smallest tier) to the "
        f"first 200 on /readyz, polled every 50 ms, and to the first fresh /summary, polled "
        f"every 5 ms; median of {len(starts)} starts: {ready * 1000:.0f} ms and "
        f"{fresh * 1000:.0f} ms."
    )
    result.add(
        f"RSS idle, after the first refresh: {load.idle_mib:.1f} MiB; its peak (VmHWM) after "
        f"wrk sent {load.requests:,} requests on {CONNECTIONS:,} connections: "
        f"{load.peak_mib:.1f} MiB, with {load.errors} errors (EXPORTER_MAX_CONNECTIONS raised "
        f"to {MAX_CONNECTIONS:,} for them). Across series counts, after three refreshes:"
    )
    rows = [[f"{n:,}", f"{rss:.1f}", f"{hwm:.1f}"] for n, (rss, hwm) in tiers.items()]
    result.table(["series", "VmRSS MiB", "VmHWM MiB"], rows)
    limit = f"≤ {START_LIMIT_S:g} s (the liveness probe's delay)"
    result.check("start-up: first /readyz", f"{ready:.2f} s", limit, ready <= START_LIMIT_S)
    result.check("start-up: first fresh /summary", f"{fresh:.2f} s", limit, fresh <= START_LIMIT_S)
    peak = max(load.peak_mib, *(hwm for _, hwm in tiers.values()))
    peak_name = "RSS, peak (idle, load, every tier)"
    result.check(peak_name, f"{peak:.1f} MiB", f"< {LIMIT_MIB:.0f} MiB", peak < LIMIT_MIB)
    smallest, largest = min(tiers), max(tiers)
    growth = tiers[largest][0] / tiers[smallest][0]
    flat_name = f"RSS at {largest:,} / at {smallest:,} series"
    result.check(flat_name, ratio(growth), f"≤ {ratio(FLAT)} (flat)", growth <= FLAT)
    errors = f"errors under load ({CONNECTIONS:,} connections)"
    result.check(errors, str(load.errors), "0", load.errors == 0)
    return result
