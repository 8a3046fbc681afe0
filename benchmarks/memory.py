"""4. Memory and start: RSS idle, under load and across series counts; time to serve.

RSS is the exporter process' VmRSS (resident now) and VmHWM (its peak), from /proc.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    Exporter,
    Section,
    WrkResult,
    describe_errors,
    median,
    ratio,
    table,
    wrk,
)
from harness.servers import wait_for

LIMIT_MIB = 80.0
# Flat: the largest tier's RSS within 10 % of the smallest's.
FLAT = 1.10


def _mib(kib: int) -> float:
    return kib / 1024


@dataclass(frozen=True)
class Start:
    healthy_s: float
    fresh_s: float


def start_times(url: str, workdir: Path, repeats: int) -> list[Start]:
    """From spawning the process to the first 200 /healthz, and to the first fresh snapshot."""
    starts = []
    for turn in range(repeats):
        with Exporter(url, workdir, name=f"exporter-start-{turn}") as exporter:
            starts.append(Start(exporter.healthy_after, exporter.fresh_after))
    return starts


@dataclass(frozen=True)
class UnderLoad:
    idle_kib: int
    peak_kib: int  # the highest VmRSS sampled while wrk ran
    hwm_kib: int
    after_kib: int
    run: WrkResult


def under_load(url: str, workdir: Path, *, connections: int, seconds: float) -> UnderLoad:
    with Exporter(url, workdir, name="exporter-memory") as exporter:
        # Settled: imports done, first refresh done, its garbage collected.
        time.sleep(2)
        idle = exporter.memory_kib()[0]
        runs: list[WrkResult] = []
        load = threading.Thread(
            target=lambda: runs.append(wrk(exporter.url + "/summary", connections, seconds))
        )
        load.start()
        samples = [idle]
        # Sampled every 0.1 s while wrk runs; bounded by the run's length plus a margin.
        for _ in range(int((seconds + 30) / 0.1)):
            if not load.is_alive():
                break
            samples.append(exporter.memory_kib()[0])
            time.sleep(0.1)
        load.join(timeout=60)
        after, hwm = exporter.memory_kib()
        return UnderLoad(idle, max(samples), hwm, after, runs[0])


@dataclass(frozen=True)
class TierMemory:
    series: int
    rss_kib: int
    hwm_kib: int
    refreshes: int
    mean_refresh_s: float
    nulls: int


def at_tier(url: str, workdir: Path, series: int, *, interval: float, refreshes: int) -> TierMemory:
    """The exporter on a tier's Prometheus after a few refreshes, as a real process."""
    with Exporter(url, workdir, name=f"exporter-{series}", interval=interval) as exporter:
        wait_for(lambda: exporter.refreshes()[0] >= refreshes, interval * (refreshes + 2), 0.2)
        done, total = exporter.refreshes()
        nulls = len(exporter.summary()["nulls"])
        rss, hwm = exporter.memory_kib()
        return TierMemory(series, rss, hwm, done, total / max(done, 1), nulls)


def section(starts: Sequence[Start], load: UnderLoad, tiers: Sequence[TierMemory]) -> Section:
    result = Section("4. Memory and start")
    result.add(
        f"Time from spawning `python -m exporter serve` (115 series upstream) to the first "
        f"200 on /healthz and to the first fresh /summary, polled every 5 ms; median of "
        f"{len(starts)}."
    )
    healthy = median([s.healthy_s for s in starts])
    fresh = median([s.fresh_s for s in starts])
    result.add(
        table(
            ["first /healthz", "first fresh snapshot"],
            [[f"{healthy * 1000:.0f} ms", f"{fresh * 1000:.0f} ms"]],
        )
    )
    result.add(
        f"RSS (MiB): idle {_mib(load.idle_kib):.1f}; under wrk with {load.run.requests:,} "
        f"requests on 1,000 connections: highest sample {_mib(load.peak_kib):.1f}, VmHWM "
        f"{_mib(load.hwm_kib):.1f}; after {_mib(load.after_kib):.1f}."
    )
    rows = [
        [
            f"{t.series:,}",
            f"{_mib(t.rss_kib):.1f}",
            f"{_mib(t.hwm_kib):.1f}",
            t.refreshes,
            f"{t.mean_refresh_s * 1000:.0f}",
            t.nulls,
        ]
        for t in tiers
    ]
    result.add(
        "Across series counts, the exporter as a process after its refreshes (the refresh "
        "time is its own histogram's mean, a cross-check of section 2; null fields show the "
        "snapshot is real):"
    )
    result.add(
        table(
            ["series", "VmRSS MiB", "VmHWM MiB", "refreshes", "mean refresh ms", "null fields"],
            rows,
        )
    )
    peak = max([load.hwm_kib, *(t.hwm_kib for t in tiers)])
    result.check(
        "RSS, highest (idle, load, all tiers)",
        f"{_mib(peak):.1f} MiB",
        f"< {LIMIT_MIB:.0f} MiB",
        _mib(peak) < LIMIT_MIB,
    )
    growth = tiers[-1].rss_kib / tiers[0].rss_kib
    result.check(
        f"RSS at {tiers[-1].series:,} / at {tiers[0].series:,} series",
        ratio(growth),
        f"≤ {ratio(FLAT)} (flat)",
        growth <= FLAT,
    )
    result.check(
        "errors under load (1,000 connections)",
        describe_errors(load.run.errors),
        "0",
        load.run.errors.total() == 0,
    )
    return result
