"""(e) Fleet: what the summary costs Prometheus, from the recording rules or as raw PromQL.

1. Per refresh, at each size: Prometheus' own time for the queries of one refresh (the sum of
   `stats.timings.evalTotalTime` in its query log, rule evaluations left out), the exporter's
   refresh asking the raw PromQL (EXPORTER_RECORDED_RULES=off) against the same refresh
   reading the rules that Prometheus evaluates (on).
2. Many exporters, at the largest size: Prometheus' CPU time (utime + stime from /proc) while
   1, 10 and 50 `python -m exporter serve` processes refresh on their own every 15 s, raw
   against recorded; beside it, Prometheus with no exporter (the rules' evaluation and idle).

`python -m benchmarks.fleet [--sizes 1,10000,100000] [--seconds 45]` prints the section.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from benchmarks import data
from benchmarks.common import BenchError, Section, http_get, ratio, table
from exporter.catalog import load_catalog
from exporter.recorded import RecordedRules
from exporter.refresher import Evaluator
from exporter.rules import render_rules
from exporter.settings import Settings
from exporter.upstream import session_for, upstream_for
from harness.servers import ExporterProcess, PrometheusServer, wait_for

WINDOW = "5m"
RULE_INTERVAL = "15s"
FLAT_GOAL = 1.5  # recorded time per refresh, largest size / smallest
SHARE_GOAL = 1 / 20  # recorded / raw, largest size
EXPORTERS = (1, 10, 50)


def start_tier(series: int, workdir: Path) -> data.Tier:
    """The gateway at about `series` series up to now, and Prometheus evaluating the rules."""
    workdir.mkdir(parents=True, exist_ok=True)
    rules = workdir / "summary.rules.yml"
    rules.write_text(render_rules(load_catalog(), WINDOW, interval=RULE_INTERVAL))
    # No samples after now: Prometheus stores no rule result before its newest sample.
    samples, count = data.gateway_samples(series, history_s=360, live_s=0)
    newest = max(sample.timestamp for sample in samples)
    server = PrometheusServer.start(samples, workdir, rule_files=[rules])
    if not wait_for(lambda: time.time() > newest, 30) or not _evaluated(server):
        server.stop()
        raise BenchError(f"the rules were not evaluated:\n{server.log_tail()}")
    return data.Tier(count, server)


def _evaluated(server: PrometheusServer) -> bool:
    """Until an evaluation of the group after now is stored (the existence rule is its last)."""
    started = time.time()
    question = urllib.parse.urlencode({"query": "max(timestamp(summary:metric_series))"})

    def done() -> bool:
        _, body = http_get(f"{server.url}/api/v1/query?{question}", timeout=10)
        result = json.loads(body)["data"]["result"] if body else []
        return bool(result) and float(result[0]["value"][1]) > started

    return wait_for(done, 120, 0.5)


def _eval_seconds(query_log: Path, offset: int) -> tuple[float, int]:
    """Prometheus' evaluation time of the queries logged after `offset`, and how many, rule
    evaluations left out."""
    with query_log.open("rb") as log:
        log.seek(offset)
        lines = log.read().splitlines()
    total, count = 0.0, 0
    for line in lines:
        entry = json.loads(line)
        if "ruleGroup" in entry:
            continue
        total += entry["stats"]["timings"]["evalTotalTime"]
        count += 1
    return total, count


async def _per_refresh(server: PrometheusServer, rounds: int) -> dict[str, list[float]]:
    settings = Settings(prometheus_url=server.url)
    catalog = load_catalog(None)
    seconds: dict[str, list[float]] = {"raw": [], "recorded": [], "fields": []}
    async with session_for(settings) as session:
        client = upstream_for(settings, session)
        reader = RecordedRules(client, mode="auto", max_age=60, limits=settings.table_limits)
        for mode, recorded in (("raw", None), ("recorded", reader)):
            evaluator = Evaluator(
                catalog,
                client,
                max_concurrency=settings.max_concurrent_queries,
                limits=settings.table_limits,
                max_bytes=1 << 26,
                recorded=recorded,
            )
            for round_ in range(rounds + 1):  # the first warms Prometheus' caches up
                offset = server.query_log.stat().st_size if server.query_log.exists() else 0
                snapshot = await evaluator(round(time.time(), 3), settings.window, "background")
                if snapshot.errors():
                    raise BenchError(f"{mode} refresh failed: {snapshot.errors()[0][1]}")
                if recorded is not None:
                    fields = sum(f.recorded for f in snapshot.fields.values())
                    seconds["fields"] = [fields / len(snapshot.fields)]
                    if asked := [".".join(k) for k, f in snapshot.fields.items() if not f.recorded]:
                        print(f"asked as PromQL: {', '.join(asked)}", file=sys.stderr)
                await asyncio.sleep(0.2)  # the query log is written after the answer
                if round_:
                    seconds[mode].append(_eval_seconds(server.query_log, offset)[0])
    return seconds


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _prometheus_cpu(
    server: PrometheusServer, workdir: Path, exporters: int, mode: str, seconds: float
) -> float:
    """Prometheus' CPU seconds per minute while `exporters` processes refresh on their own."""
    variables = {
        "EXPORTER_PROMETHEUS_URL": server.url,
        "EXPORTER_RECORDED_RULES": mode,
        "EXPORTER_LOG_LEVEL": "ERROR",
    }
    started: list[ExporterProcess] = []
    try:
        for number in range(exporters):
            started.append(ExporterProcess.start(workdir / f"{mode}-{number}", variables))
        before = _cpu_seconds(server.pid)
        time.sleep(seconds)
        return (_cpu_seconds(server.pid) - before) * 60 / seconds
    finally:
        for exporter in started:
            exporter.stop()
        if not wait_for(lambda: _engine_queries(server) == 0, 300, 0.5):
            raise BenchError("Prometheus still runs the queries of stopped exporters")


def _engine_queries(server: PrometheusServer) -> float:
    """The queries Prometheus runs or queues now (its prometheus_engine_queries gauge)."""
    _, body = http_get(f"{server.url}/metrics", timeout=10)
    for line in body.decode().splitlines():
        if line.startswith("prometheus_engine_queries "):
            return float(line.split()[1])
    return 0.0


def run(sizes: Sequence[int], workdir: Path, *, rounds: int, seconds: float) -> Section:
    per_size: dict[int, dict[str, list[float]]] = {}
    cpu: dict[tuple[int, str], float] = {}
    for size in sizes:
        tier = start_tier(size, workdir / str(size))
        with tier.prometheus:
            per_size[tier.series] = asyncio.run(_per_refresh(tier.prometheus, rounds))
            if size == sizes[-1]:
                cpu[0, "none"] = _prometheus_cpu(tier.prometheus, workdir, 0, "off", seconds)
                # Recorded first: raw queries still running after their exporters stopped
                # would be counted against the next figure.
                for mode in ("auto", "off"):
                    for count in EXPORTERS:
                        cpu[count, mode] = _prometheus_cpu(
                            tier.prometheus, workdir / "cpu", count, mode, seconds
                        )
    return section(per_size, cpu, rounds, seconds)


def section(
    per_size: dict[int, dict[str, list[float]]],
    cpu: dict[tuple[int, str], float],
    rounds: int,
    seconds: float,
) -> Section:
    result = Section("Fleet: Prometheus' cost of the summary, recorded rules against raw PromQL")
    result.add(
        "Prometheus evaluates the rules of `summary-exporter rules` every "
        f"{RULE_INTERVAL} (one group, window {WINDOW}). Per refresh: the sum of "
        "`stats.timings.evalTotalTime` over the refresh's queries in Prometheus' query log "
        f"(rule evaluations left out), median of {rounds} refreshes after one to warm up; raw "
        "is EXPORTER_RECORDED_RULES=off, recorded is auto (the shipped default: fields read "
        "from the rules, the others, such as a table with more ties at its cut than it reads, "
        "asked as PromQL at the rules' instant)."
    )
    medians = {
        series: {mode: statistics.median(values) * 1000 for mode, values in modes.items()}
        for series, modes in per_size.items()
    }
    rows = [
        [
            f"{series:,}",
            f"{m['raw']:.1f}",
            f"{m['recorded']:.2f}",
            ratio(m["recorded"] / m["raw"], 3),
            f"{m['fields'] / 10:.0f} %",
        ]
        for series, m in medians.items()
    ]
    headers = ["series", "raw ms", "recorded ms", "recorded / raw", "fields from rules"]
    result.add(table(headers, rows))
    smallest, largest = medians[min(medians)], medians[max(medians)]
    flat = largest["recorded"] / smallest["recorded"]
    share = largest["recorded"] / largest["raw"]
    result.check(
        f"recorded time per refresh, {max(medians):,} / {min(medians):,} series",
        ratio(flat),
        f"≤ {ratio(FLAT_GOAL)}",
        flat <= FLAT_GOAL,
    )
    result.check(
        f"recorded / raw time per refresh, {max(medians):,} series",
        ratio(share, 3),
        f"≤ {ratio(SHARE_GOAL, 3)}",
        share <= SHARE_GOAL,
    )
    if cpu:
        result.add(
            f"Prometheus CPU at {max(medians):,} series, in CPU seconds per minute, measured "
            f"over {seconds:g} s while N exporter processes (shipped settings: a refresh every "
            "15 s at a random phase; raw with EXPORTER_RECORDED_RULES=off) run; with no "
            "exporter it evaluates the rules and idles."
        )
        rows = [["0", f"{cpu[0, 'none']:.2f}", f"{cpu[0, 'none']:.2f}"]]
        rows += [[str(n), f"{cpu[n, 'off']:.2f}", f"{cpu[n, 'auto']:.2f}"] for n in EXPORTERS]
        result.add(table(["exporters", "raw", "recorded"], rows))
        most = max(EXPORTERS)
        result.check(
            f"Prometheus CPU, {most} exporters recorded / 1 exporter raw",
            ratio(cpu[most, "auto"] / cpu[1, "off"]),
            f"< {ratio(1)}",
            cpu[most, "auto"] < cpu[1, "off"],
        )
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet", description=__doc__)
    parser.add_argument("--sizes", default="1,10000,100000", help="series per tier")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=45.0, help="per CPU measurement")
    arguments = parser.parse_args(argv)
    for name in [name for name in os.environ if name.startswith("EXPORTER_")]:
        del os.environ[name]
    sizes = [int(size) for size in arguments.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="summary-exporter-fleet-") as workdir:
        try:
            result = run(sizes, Path(workdir), rounds=arguments.rounds, seconds=arguments.seconds)
        except BenchError as error:
            print(f"benchmarks.fleet: {error}", file=sys.stderr)
            return 2
    print("\n\n".join(result.body))
    for check in result.checks:
        print(f"{'pass' if check.passed else 'FAIL'} {check.name}: {check.measured} ({check.goal})")
    return 0 if all(check.passed for check in result.checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
