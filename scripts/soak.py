"""Soak: many clients poll a running exporter while its Prometheus is killed and restarted.

    python -m scripts.soak [--minutes 10] [--clients 50] [--kill-every 60] [--down-for 20]

Starts a real Prometheus (backfilled with the test dataset, its busy half-hour ending now)
and the exporter as a separate process, both on 127.0.0.1, then reports the exporter's RSS
at start and end, answers by status, client errors by kind, and the periods during which
the summary was stale. Everything it starts is stopped by PID. Exit 1 when a goal is missed
(RSS growth >= 10 %, or any 5xx).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from harness.servers import PrometheusServer, free_port
from tests.integration import dataset

RSS_GROWTH_GOAL = 0.10


@dataclass
class Observations:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    stale_since: float | None = None
    stale_periods: list[float] = field(default_factory=list)

    def saw(self, stale: bool, now: float) -> None:
        if stale and self.stale_since is None:
            self.stale_since = now
        elif not stale and self.stale_since is not None:
            self.stale_periods.append(now - self.stale_since)
            self.stale_since = None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


async def poll(base: str, stop_at: float, seen: Observations) -> None:
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < stop_at:
            try:
                async with session.get(f"{base}/summary") as response:
                    seen.statuses[response.status] += 1
                    if response.status == 200:
                        seen.saw((await response.json())["stale"], time.monotonic())
                async with session.get(f"{base}/metrics") as response:
                    seen.statuses[response.status] += 1
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                seen.errors[type(error).__name__] += 1
            await asyncio.sleep(0.1)


async def sample_rss(pid: int, stop_at: float, every: float, samples: list[int]) -> None:
    while time.monotonic() + every < stop_at:
        await asyncio.sleep(every)
        samples.append(rss_kib(pid))


async def chaos(server: PrometheusServer, stop_at: float, every: float, down_for: float) -> int:
    kills = 0
    while time.monotonic() + every < stop_at:
        await asyncio.sleep(every - down_for)
        await asyncio.to_thread(server.kill)
        kills += 1
        await asyncio.sleep(down_for)
        await asyncio.to_thread(server.restart)
    return kills


async def soak(arguments: argparse.Namespace, workdir: Path) -> dict[str, object]:
    now = math.floor(time.time() / dataset.STEP) * dataset.STEP
    server = PrometheusServer.start(list(dataset.samples(start=now - 1800, until=now)), workdir)
    port = free_port()
    environment = os.environ | {
        "EXPORTER_HOST": "127.0.0.1",
        "EXPORTER_PORT": str(port),
        "EXPORTER_PROMETHEUS_URL": server.url,
        "EXPORTER_REFRESH_INTERVAL": str(arguments.interval),
        "EXPORTER_MAX_STALENESS": str(arguments.kill_every * 2),
    }
    exporter = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "serve", env=environment, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.sleep(3)  # start and first refresh, before the first RSS reading
        rss_idle = rss_kib(exporter.pid)
        seen = Observations()
        rss: list[int] = []
        stop_at = time.monotonic() + arguments.minutes * 60
        clients = [poll(base, stop_at, seen) for _ in range(arguments.clients)]
        kills, *_ = await asyncio.gather(
            chaos(server, stop_at, arguments.kill_every, arguments.down_for),
            sample_rss(exporter.pid, stop_at, 10, rss),
            *clients,
        )
        rss_end = rss_kib(exporter.pid)
    finally:
        exporter.send_signal(signal.SIGTERM)
        await asyncio.wait_for(exporter.wait(), timeout=30)
        server.stop()
    if seen.stale_since is not None:
        seen.stale_periods.append(time.monotonic() - seen.stale_since)
    # Growth is measured from the first minute under load: what the first connections and
    # buffers allocate is working set, not a leak; the idle figure is reported beside it.
    rss_start = rss[min(5, len(rss) - 1)] if rss else rss_idle
    growth = (rss_end - rss_start) / rss_start
    server_errors = sum(count for status, count in seen.statuses.items() if status >= 500)
    return {
        "minutes": arguments.minutes,
        "clients": arguments.clients,
        "prometheus_kills": kills,
        "rss_idle_kib": rss_idle,
        "rss_after_1_minute_kib": rss_start,
        "rss_end_kib": rss_end,
        "rss_every_10s_kib": rss,
        "rss_growth": round(growth, 4),
        "answers_by_status": dict(seen.statuses),
        "client_errors_by_kind": dict(seen.errors),
        "stale_periods_seconds": [round(p, 1) for p in seen.stale_periods],
        "server_errors": server_errors,
        "goals_met": growth < RSS_GROWTH_GOAL and server_errors == 0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--kill-every", type=float, default=60, help="seconds")
    parser.add_argument("--down-for", type=float, default=20, help="seconds")
    parser.add_argument("--interval", type=float, default=5, help="refresh interval, seconds")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as workdir:
        report = asyncio.run(soak(arguments, Path(workdir)))
    print(json.dumps(report, indent=2))
    return 0 if report["goals_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
