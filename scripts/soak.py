"""Soak: many clients poll a running exporter while its upstream fails in every way we know.

    python -m scripts.soak [--minutes 10] [--clients 50] [--kill-every 60] [--down-for 20]

Starts a real Prometheus (backfilled with the test dataset, its busy half-hour ending now)
behind the hostile upstream of the tests (harness/hostile_upstream.py) in its proxy mode, and
the exporter as a separate process reading that upstream, all on 127.0.0.1. Every
`--kill-every` seconds: three hostile answers in turn (each for `--hostile-for` s, every kind
by the sixth minute), then Prometheus killed for `--down-for` s and restarted. Meanwhile
`--clients` clients poll /summary and /metrics, and a few others open status pages at
instants of the last hour. In the second cycle, a flood of half-open connections (the
exporter's limit of open files + 100) for `--hostile-for` s. At the end, SIGTERM with
answers in flight.

Reports, as JSON: answers by status, the exporter's RSS (idle, once every hostile answer has
been seen, at the end, and its peak during each hostile answer), the pollers' slowest answer
in each phase, stale periods, range queries per page, and the exit time. Everything it starts
is stopped by PID. Exit 1 when a goal is missed (RSS growth >= 10 % from the moment every
hostile answer has been seen to the end, any 5xx, a peak above 200 MiB, a poller's answer
slower than 2 s during the flood, an exit later than the grace and a second).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import signal
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from harness.hostile_upstream import HOSTILE, HostileUpstreamProcess
from harness.servers import ExporterProcess, PrometheusServer, memory_kib
from tests.integration import dataset

RSS_GROWTH_GOAL = 0.10
RSS_CEILING_MIB = 200
FLOOD_ANSWER_GOAL_S = 2.0
OPEN_FILES = 1024
SHUTDOWN_GRACE = 2.0
MIB = 1024 * 1024


@dataclass
class Observations:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    stale_since: float | None = None
    stale_periods: list[float] = field(default_factory=list)
    phase: str = "healthy"
    # The pollers' slowest answer in each phase, and how many answers it had.
    slowest: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    answers: Counter[str] = field(default_factory=Counter)
    # Status pages: how many, and the slowest (those at a past instant ask the upstream).
    pages: int = 0
    slowest_page: float = 0.0

    def saw(self, stale: bool, now: float) -> None:
        if stale and self.stale_since is None:
            self.stale_since = now
        elif not stale and self.stale_since is not None:
            self.stale_periods.append(now - self.stale_since)
            self.stale_since = None

    def answered(self, status: int, took: float, page: bool) -> None:
        self.statuses[status] += 1
        if page:
            self.pages += 1
            self.slowest_page = max(self.slowest_page, took)
        else:
            self.answers[self.phase] += 1
            self.slowest[self.phase] = max(self.slowest[self.phase], took)


def reset_peak(pid: int) -> None:
    """Starts VmHWM (the peak RSS) again from the current RSS (Linux's clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


async def timed_get(
    session: aiohttp.ClientSession, url: str, seen: Observations, page: bool = False
) -> bytes | None:
    started = time.monotonic()
    try:
        async with session.get(url) as response:
            payload = await response.read()
            seen.answered(response.status, time.monotonic() - started, page)
            return payload if response.status == 200 else None
    except (aiohttp.ClientError, TimeoutError) as error:
        seen.errors[type(error).__name__] += 1
        return None


async def poll(base: str, stop_at: float, seen: Observations) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        while time.monotonic() < stop_at:
            summary = await timed_get(session, f"{base}/summary", seen)
            if summary is not None:
                seen.saw(json.loads(summary)["stale"], time.monotonic())
            await timed_get(session, f"{base}/metrics", seen)
            await asyncio.sleep(0.1)


async def browse(base: str, stop_at: float, seen: Observations) -> None:
    """Status pages at instants of the last hour, and the live one: sparklines each time."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        while time.monotonic() < stop_at:
            instant = math.floor(time.time()) - random.randrange(3600)
            for url in (f"{base}/?time={instant}", f"{base}/"):
                await timed_get(session, url, seen, page=True)
            await asyncio.sleep(0.5)


async def flood(port: int, seconds: float) -> dict[str, int]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "harness.connection_flood", "--port", str(port),
        "--connections", str(OPEN_FILES + 100), "--seconds", str(seconds),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    output, _ = await process.communicate()
    counts: dict[str, int] = json.loads(output)
    return counts


async def chaos(
    arguments: argparse.Namespace,
    server: PrometheusServer,
    upstream: HostileUpstreamProcess,
    exporter: ExporterProcess,
    stop_at: float,
    seen: Observations,
    report: dict[str, object],
) -> None:
    modes = itertools.cycle(HOSTILE)
    peaks: dict[str, int] = {}
    kills = 0
    async with aiohttp.ClientSession() as session:

        async def phase(name: str, seconds: float) -> None:
            seen.phase = name
            reset_peak(exporter.pid)
            await asyncio.sleep(seconds)
            peaks[name] = max(peaks.get(name, 0), memory_kib(exporter.pid, "VmHWM"))
            seen.phase = "healthy"
            if len(peaks) == len(HOSTILE) + 1 and "rss_every_answer_seen_kib" not in report:
                report["rss_every_answer_seen_kib"] = memory_kib(exporter.pid)

        for cycle in itertools.count():
            if time.monotonic() + arguments.kill_every > stop_at:
                break
            quiet = (arguments.kill_every - arguments.down_for - 3 * arguments.hostile_for) / 4
            for turn in range(3):
                await asyncio.sleep(quiet)
                if cycle == 1 and turn == 0:
                    flooding = asyncio.create_task(
                        flood(int(exporter.url.rsplit(":", 1)[1]), arguments.hostile_for)
                    )
                    await phase("flood", arguments.hostile_for)
                    report["flood"] = await flooding
                    continue
                mode = next(modes)
                await upstream.set_mode(session, mode)
                await phase(mode, arguments.hostile_for)
                await upstream.set_mode(session, "proxy")
            await asyncio.sleep(quiet)
            await asyncio.to_thread(server.kill)
            kills += 1
            await asyncio.sleep(arguments.down_for)
            await asyncio.to_thread(server.restart)
    report["prometheus_kills"] = kills
    report["peak_rss_mib_by_phase"] = {name: round(kib / 1024, 1) for name, kib in peaks.items()}


async def stop_with_answers_in_flight(
    upstream: HostileUpstreamProcess, exporter: ExporterProcess
) -> dict[str, object]:
    async with aiohttp.ClientSession() as session:
        await upstream.set_mode(session, "never_answers")
        in_flight = [
            asyncio.ensure_future(session.get(f"{exporter.url}{path}"))
            for path in ("/summary?window=1h", "/?time=1767225600", "/health?window=2h")
        ]
        await asyncio.sleep(0.5)
        signalled = time.monotonic()
        exporter.signal(signal.SIGTERM)
        status = await asyncio.to_thread(exporter.wait, SHUTDOWN_GRACE + 10)
        took = time.monotonic() - signalled
        await asyncio.gather(*in_flight, return_exceptions=True)
    return {"exit_status": status, "exit_seconds": round(took, 2), "grace": SHUTDOWN_GRACE}


async def soak(arguments: argparse.Namespace, workdir: Path) -> dict[str, object]:
    now = math.floor(time.time() / dataset.STEP) * dataset.STEP
    server = PrometheusServer.start(list(dataset.samples(start=now - 1800, until=now)), workdir)
    upstream = HostileUpstreamProcess.start(workdir / "upstream", prometheus=server.url)
    variables = {
        "EXPORTER_PROMETHEUS_URL": upstream.url,
        "EXPORTER_REFRESH_INTERVAL": str(arguments.interval),
        "EXPORTER_MAX_STALENESS": str(arguments.kill_every * 2),
        "EXPORTER_SHUTDOWN_GRACE": str(SHUTDOWN_GRACE),
    }
    launcher = ("prlimit", f"--nofile={OPEN_FILES}")
    report: dict[str, object] = {"minutes": arguments.minutes, "clients": arguments.clients}
    try:
        async with aiohttp.ClientSession() as session:
            await upstream.set_mode(session, "proxy")
        exporter = ExporterProcess.start(workdir / "exporter", variables, launcher=launcher)
        try:
            await asyncio.sleep(3)  # the first refresh, before the first RSS reading
            rss_idle = memory_kib(exporter.pid)
            seen, rss = Observations(), list[int]()
            range_queries_before = range_queries(server)
            stop_at = time.monotonic() + arguments.minutes * 60
            await asyncio.gather(
                chaos(arguments, server, upstream, exporter, stop_at, seen, report),
                sample_rss(exporter.pid, stop_at, 10, rss),
                *(poll(exporter.url, stop_at, seen) for _ in range(arguments.clients)),
                *(browse(exporter.url, stop_at, seen) for _ in range(arguments.browsers)),
            )
            rss_end = memory_kib(exporter.pid)
            asked = range_queries(server) - range_queries_before
            report |= await stop_with_answers_in_flight(upstream, exporter)
        finally:
            exporter.stop()
    finally:
        upstream.stop()
        server.stop()
    if seen.stale_since is not None:
        seen.stale_periods.append(time.monotonic() - seen.stale_since)
    # Growth is measured from the moment every hostile answer has been seen once: what the
    # first connections, buffers and answers of each kind allocate is working set, not a
    # leak; the idle and first-minute figures are reported beside it.
    rss_first_minute = rss[min(5, len(rss) - 1)] if rss else rss_idle
    rss_start = report.pop("rss_every_answer_seen_kib", rss_first_minute)
    assert isinstance(rss_start, int)
    growth = (rss_end - rss_start) / rss_start
    server_errors = sum(count for status, count in seen.statuses.items() if status >= 500)
    peaks = report.get("peak_rss_mib_by_phase", {})
    assert isinstance(peaks, dict)
    report |= {
        "rss_idle_mib": round(rss_idle / 1024, 1),
        "rss_after_1_minute_mib": round(rss_first_minute / 1024, 1),
        "rss_every_answer_seen_mib": round(rss_start / 1024, 1),
        "rss_end_mib": round(rss_end / 1024, 1),
        "rss_every_10s_mib": [round(kib / 1024, 1) for kib in rss],
        "rss_growth": round(growth, 4),
        "answers_by_status": dict(seen.statuses),
        "client_errors_by_kind": dict(seen.errors),
        "answers_by_phase": dict(seen.answers),
        "pollers_slowest_answer_seconds_by_phase": {
            k: round(v, 3) for k, v in seen.slowest.items()
        },
        "slowest_page_seconds": round(seen.slowest_page, 3),
        "stale_periods_seconds": [round(p, 1) for p in seen.stale_periods],
        "page_requests": seen.pages,
        "range_queries": asked,
        "range_queries_per_page": round(asked / max(1, seen.pages), 3),
        "server_errors": server_errors,
    }
    exit_seconds = report["exit_seconds"]
    assert isinstance(exit_seconds, float)
    report["goals_met"] = (
        growth < RSS_GROWTH_GOAL
        and server_errors == 0
        and all(peak < RSS_CEILING_MIB for peak in peaks.values())
        and seen.slowest.get("flood", 0.0) < FLOOD_ANSWER_GOAL_S
        and exit_seconds <= SHUTDOWN_GRACE + 1
        and report["exit_status"] == 0
    )
    return report


def range_queries(server: PrometheusServer) -> int:
    """Range queries in Prometheus' query log (which survives its restarts)."""
    return sum(1 for entry in server.logged() if entry["params"]["step"] > 0)


async def sample_rss(pid: int, stop_at: float, every: float, samples: list[int]) -> None:
    while time.monotonic() + every < stop_at:
        await asyncio.sleep(every)
        samples.append(memory_kib(pid))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--browsers", type=int, default=4, help="clients opening pages")
    parser.add_argument("--kill-every", type=float, default=60, help="seconds")
    parser.add_argument("--down-for", type=float, default=20, help="seconds")
    parser.add_argument("--hostile-for", type=float, default=8, help="seconds")
    parser.add_argument("--interval", type=float, default=5, help="refresh interval, seconds")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        report = asyncio.run(soak(arguments, Path(workdir)))
    print(json.dumps(report, indent=2))
    return 0 if report["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
