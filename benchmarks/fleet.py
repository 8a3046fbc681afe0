"""(e) Fleet: what the summary costs Prometheus, from the recording rules or as raw PromQL.

1. Per refresh, at each size: Prometheus' own time for the queries of one refresh, the
   exporter's refresh asking the raw PromQL against the same refresh reading the rules.
2. Many exporters, at the largest size: Prometheus' CPU time while 1, 10 and 50
   `python -m exporter serve` processes refresh on their own, raw against recorded; beside
   it, Prometheus with no exporter (the rules' evaluation and idle).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from benchmarks import data
from benchmarks.common import BenchError, Section, evaluator, ratio, start_exporter
from exporter.catalog import load_catalog
from exporter.rules import render_rules
from exporter.settings import Settings
from exporter.upstream import session_for, upstream_for
from harness.servers import PrometheusServer, http_get, wait_for

WINDOW = "5m"
RULE_INTERVAL = "15s"
FLAT_GOAL = 1.5  # recorded time per refresh, largest size / smallest
SHARE_GOAL = 1 / 20  # recorded / raw, largest size
EXPORTERS = (1, 10, 50)
# How long each size's data lasts from its start: longer than all the figures of a size take.
LIVE_S = 1200


def start_tier(series: int, workdir: Path) -> tuple[int, PrometheusServer]:
    """The gateway at about `series` series up to now, and Prometheus evaluating the rules."""
    workdir.mkdir(parents=True, exist_ok=True)
    rules = workdir / "summary.rules.yml"
    rules.write_text(render_rules(load_catalog(), WINDOW, interval=RULE_INTERVAL))
    # Samples ahead of now keep every window full for the whole run; the rules' results are
    # stored among them as out-of-order samples.
    samples, count = data.gateway_samples(series, history_s=360, live_s=LIVE_S)
    server = PrometheusServer.start(
        samples, workdir, rule_files=[rules], out_of_order_window=f"{2 * LIVE_S}s"
    )
    if not _evaluated(server):
        server.stop()
        raise BenchError(f"the rules were not evaluated:\n{server.log_tail()}")
    return count, server


def _evaluated(server: PrometheusServer) -> bool:
    """Until an evaluation of the group after now is stored (the existence rule is its last)."""
    started = time.time()
    question = urllib.parse.urlencode({"query": "max(timestamp(summary:metric_series))"})

    def done() -> bool:
        _, body = http_get(f"{server.url}/api/v1/query?{question}", timeout=10)
        result = json.loads(body)["data"]["result"] if body else []
        return bool(result) and float(result[0]["value"][1]) > started

    return wait_for(done, 120, 0.5)


async def _per_refresh(
    server: PrometheusServer, rounds: int, modes: dict[str, Literal["off", "auto"]]
) -> dict[str, list[float]]:
    """The sum of `stats.timings.evalTotalTime` over the queries of each refresh, raw
    (EXPORTER_RECORDED_RULES=off) or recorded (auto), in Prometheus' query log."""
    seconds: dict[str, list[float]] = {name: [] for name in modes}
    for name, mode in modes.items():
        # A raw refresh at 100,000 series reads far more than the shipped limit.
        settings = Settings(
            prometheus_url=server.url, recorded_rules=mode, max_refresh_bytes=1 << 26
        )
        async with session_for(settings) as session:
            evaluate = evaluator(settings, upstream_for(settings, session))
            for round_ in range(rounds + 1):  # the first warms Prometheus' caches up
                logged = len(server.logged())
                snapshot = await evaluate(round(time.time(), 3), settings.window, "background")
                if snapshot.errors():
                    raise BenchError(f"{name} refresh failed: {snapshot.errors()[0][1]}")
                if mode == "auto":
                    fields = sum(f.recorded for f in snapshot.fields.values())
                    seconds["fields"] = [fields / len(snapshot.fields)]
                    if asked := [".".join(k) for k, f in snapshot.fields.items() if not f.recorded]:
                        print(f"asked as PromQL: {', '.join(asked)}", file=sys.stderr)
                await asyncio.sleep(0.2)  # the query log is written after the answer
                if round_:
                    # The rules' own evaluations are logged too.
                    stats = [e["stats"] for e in server.logged()[logged:] if "ruleGroup" not in e]
                    seconds[name].append(sum(s["timings"]["evalTotalTime"] for s in stats))
                    if mode == "auto":
                        read = sum(s["samples"]["totalQueryableSamples"] for s in stats)
                        seconds["samples"] = [read]
    return seconds


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _prometheus_cpu(
    server: PrometheusServer,
    workdir: Path,
    exporters: int,
    mode: str,
    seconds: float,
    live_until: float,
) -> float:
    """Prometheus' CPU seconds per minute while `exporters` processes refresh on their own."""
    variables = {"EXPORTER_RECORDED_RULES": mode, "EXPORTER_LOG_LEVEL": "ERROR"}
    with contextlib.ExitStack() as stack:
        for number in range(exporters):
            stack.enter_context(start_exporter(server.url, workdir / f"{mode}-{number}", variables))
        # Past the end of the data, windows empty out and queries cost less and less.
        if time.time() + seconds > live_until:
            raise BenchError(f"the data ends before this figure would: raise LIVE_S ({LIVE_S})")
        before = _cpu_seconds(server.pid)
        time.sleep(seconds)
        used = (_cpu_seconds(server.pid) - before) * 60 / seconds
    if not wait_for(lambda: _engine_queries(server) == 0, 300, 0.5):
        raise BenchError("Prometheus still runs the queries of stopped exporters")
    return used


def _engine_queries(server: PrometheusServer) -> float:
    """The queries Prometheus runs or queues now (its prometheus_engine_queries gauge)."""
    _, body = http_get(f"{server.url}/metrics", timeout=10)
    for line in body.decode().splitlines():
        if line.startswith("prometheus_engine_queries "):
            return float(line.split()[1])
    return 0.0


def run(sizes: Sequence[int], workdir: Path, rounds: int, seconds: float) -> Section:
    per_size: dict[int, dict[str, list[float]]] = {}
    cpu: dict[tuple[int, str], float] = {}
    for size in sizes:
        live_until = time.time() + LIVE_S  # the data is made after this reading
        series, prometheus = start_tier(size, workdir / str(size))
        with prometheus:
            # Raw PromQL last: right after raw refreshes at the largest size, Prometheus' own
            # work read twice the CPU of its idle self and slowed the recorded reads.
            reads = asyncio.run(_per_refresh(prometheus, rounds, {"recorded": "auto"}))
            if size == sizes[-1]:
                cpu[0, "none"] = _prometheus_cpu(prometheus, workdir, 0, "off", seconds, live_until)
                # Recorded first: raw queries still running after their exporters stopped
                # would be counted against the next figure.
                for mode in ("auto", "off"):
                    for count in EXPORTERS:
                        cpu[count, mode] = _prometheus_cpu(
                            prometheus, workdir / "cpu", count, mode, seconds, live_until
                        )
            reads |= asyncio.run(_per_refresh(prometheus, rounds, {"raw": "off"}))
            per_size[series] = reads
    result = Section("Fleet: Prometheus' cost of the summary, recorded rules against raw PromQL")
    result.add(
        "Prometheus evaluates the rules of `summary-exporter rules` every "
        f"{RULE_INTERVAL} (one group, window {WINDOW}). Per refresh: the sum of "
        "`stats.timings.evalTotalTime` over the refresh's queries in Prometheus' query log "
        f"(rule evaluations left out), median of {rounds} refreshes after one to warm up; raw "
        "is EXPORTER_RECORDED_RULES=off, recorded is auto (the shipped default: fields read "
        "from the rules, the others, such as a table with more ties at its cut than it reads, "
        "asked as PromQL at the rules' instant). Samples read: the query log's "
        "`stats.samples.totalQueryableSamples` of a recorded refresh, which grows with the rows "
        "its tables show, up to their limits."
    )
    medians = {
        series: {mode: statistics.median(values) * 1000 for mode, values in modes.items()}
        for series, modes in per_size.items()
    }
    result.table(
        ["series", "raw ms", "recorded ms", "recorded / raw", "fields from rules", "samples read"],
        [
            [
                f"{series:,}",
                f"{m['raw']:.1f}",
                f"{m['recorded']:.2f}",
                ratio(m["recorded"] / m["raw"], 4),
                f"{m['fields'] / 10:.0f} %",
                f"{m['samples'] / 1000:,.0f}",
            ]
            for series, m in medians.items()
        ],
    )
    smallest, largest = min(medians), max(medians)
    flat = medians[largest]["recorded"] / medians[smallest]["recorded"]
    share = medians[largest]["recorded"] / medians[largest]["raw"]
    name = f"recorded time per refresh, {largest:,} / {smallest:,} series"
    result.check(name, ratio(flat), f"≤ {ratio(FLAT_GOAL)}", flat <= FLAT_GOAL)
    if len(medians) > 2:
        # The flatness goal compares a gateway whose tables show a few rows with one
        # whose tables are full; between two full ones it shows what the series alone cost.
        full = sorted(medians)[-2]
        result.add(
            "A recorded refresh reads the rows its tables show, not the series: from "
            f"{full:,} to {largest:,} series, whose tables are full "
            f"({medians[full]['samples'] / 1000:,.0f} and "
            f"{medians[largest]['samples'] / 1000:,.0f} samples read), its time grows "
            f"{ratio(medians[largest]['recorded'] / medians[full]['recorded'])}."
        )
    name = f"recorded / raw time per refresh, {largest:,} series"
    result.check(name, ratio(share, 4), f"≤ {ratio(SHARE_GOAL, 3)}", share <= SHARE_GOAL)
    result.add(
        f"Prometheus CPU at {largest:,} series, in CPU seconds per minute (utime + stime from "
        f"/proc), measured over {seconds:g} s while N exporter processes (shipped settings: a "
        "refresh every 15 s at a random phase; raw with EXPORTER_RECORDED_RULES=off) run; with "
        "no exporter it evaluates the rules and idles."
    )
    rows = [["0", f"{cpu[0, 'none']:.2f}", f"{cpu[0, 'none']:.2f}"]]
    rows += [[str(n), f"{cpu[n, 'off']:.2f}", f"{cpu[n, 'auto']:.2f}"] for n in EXPORTERS]
    result.table(["exporters", "raw", "recorded"], rows)
    most, raw = cpu[max(EXPORTERS), "auto"], cpu[1, "off"]
    name = f"Prometheus CPU, {max(EXPORTERS)} exporters recorded / 1 exporter raw"
    result.check(name, ratio(most / raw), f"< {ratio(1)}", most < raw)
    return result
