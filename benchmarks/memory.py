"""(c) Memory and start-up: RSS idle, under load and across series counts; time to serve.

RSS is the exporter process' VmRSS (resident now) and VmHWM (its peak so far), from /proc.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Section, ratio, start_exporter, table, wait_until_fresh, wrk

LIMIT_MIB = 80.0
# Flat: RSS at the largest tier within 10 % of RSS at the smallest.
FLAT = 1.10
# deploy/kubernetes probes liveness after 5 s (initialDelaySeconds).
START_LIMIT_S = 5.0
# Connections beyond wrk's, for the probes that poll the exporter meanwhile.
CONNECTION_ROOM = 100


def rss_mib(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB."""
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


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
    connections: int
    requests: int
    errors: int
    idle_mib: float
    peak_mib: float  # VmHWM after the load: the highest RSS the process ever had


def under_load(url: str, workdir: Path, *, connections: int, seconds: float) -> UnderLoad:
    # Room for every client: beyond EXPORTER_MAX_CONNECTIONS (512 as shipped) the exporter
    # sheds idle connections on purpose, which wrk would count as errors.
    limit = connections + CONNECTION_ROOM
    with start_exporter(url, workdir / "under-load", max_connections=limit) as exporter:
        wait_until_fresh(exporter)
        time.sleep(1)  # the first refresh's garbage collected
        idle = rss_mib(exporter.pid)[0]
        run = wrk(exporter.url + "/summary", connections, seconds)
        return UnderLoad(connections, run.requests, run.errors, idle, rss_mib(exporter.pid)[1])


def at_tier(url: str, workdir: Path, series: int, *, interval: float) -> tuple[float, float]:
    """(VmRSS, VmHWM) of the exporter on a tier's Prometheus after three refreshes."""
    with start_exporter(url, workdir / f"tier-{series}", interval=interval) as exporter:
        wait_until_fresh(exporter)
        time.sleep(2 * interval)
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
        f"wrk sent {load.requests:,} requests on {load.connections:,} connections: "
        f"{load.peak_mib:.1f} MiB, with {load.errors} errors (EXPORTER_MAX_CONNECTIONS raised "
        f"to {load.connections + CONNECTION_ROOM:,} for them). Across series counts, after "
        f"three refreshes:"
    )
    rows = [[f"{n:,}", f"{rss:.1f}", f"{hwm:.1f}"] for n, (rss, hwm) in tiers.items()]
    result.add(table(["series", "VmRSS MiB", "VmHWM MiB"], rows))
    limit = f"≤ {START_LIMIT_S:g} s (the liveness probe's delay)"
    result.check("start-up: first /readyz", f"{ready:.2f} s", limit, ready <= START_LIMIT_S)
    result.check("start-up: first fresh /summary", f"{fresh:.2f} s", limit, fresh <= START_LIMIT_S)
    peak = max(load.peak_mib, *(hwm for _, hwm in tiers.values()))
    result.check(
        "RSS, peak (idle, load, every tier)",
        f"{peak:.1f} MiB",
        f"< {LIMIT_MIB:.0f} MiB",
        peak < LIMIT_MIB,
    )
    smallest, largest = min(tiers), max(tiers)
    growth = tiers[largest][0] / tiers[smallest][0]
    result.check(
        f"RSS at {largest:,} / at {smallest:,} series",
        ratio(growth),
        f"≤ {ratio(FLAT)} (flat)",
        growth <= FLAT,
    )
    errors = f"errors under load ({load.connections:,} connections)"
    result.check(errors, str(load.errors), "0", load.errors == 0)
    return result
