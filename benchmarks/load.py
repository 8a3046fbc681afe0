"""(b) Load on Prometheus: the queries that reach it, with one client and with many.

Prometheus writes every query it runs to its query log (the harness sets `query_log_file`),
so what reaches it is counted there, not inferred from the exporter.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from benchmarks.common import BenchError, Section, WrkResult, ratio, start_exporter, table, wrk
from harness.servers import PrometheusServer

# Queries per minute may not grow with clients; 5 % covers a refresh that starts a little late.
CONSTANT = 1.05


def _instants(query_log: Path) -> Counter[float]:
    """How many queries Prometheus ran at each evaluation instant, that is, per refresh."""
    return Counter(
        datetime.fromisoformat(json.loads(line)["params"]["start"]).timestamp()
        for line in query_log.read_text().splitlines()
    )


@dataclass(frozen=True)
class Phase:
    clients: int
    answered: int
    refreshes: int
    queries_per_refresh: frozenset[int]
    per_minute: float


def _phase(clients: int, per_instant: Counter[float], start: float, run: WrkResult) -> Phase:
    """Queries per minute over the whole refresh cycles of a phase: those of every refresh but
    the last, over the time from the first refresh to the last."""
    instants = sorted(at for at in per_instant if at >= start)
    if len(instants) < 3:
        raise BenchError(f"{len(instants)} refreshes seen with {clients} clients")
    done = [per_instant[at] for at in instants[:-1]]
    return Phase(
        clients=clients,
        answered=run.requests,
        refreshes=len(done),
        queries_per_refresh=frozenset(done),
        per_minute=sum(done) * 60 / (instants[-1] - instants[0]),
    )


def run(
    prometheus: PrometheusServer,
    workdir: Path,
    *,
    clients: Sequence[int],
    seconds: float,
    interval: float,
) -> Section:
    phases = []
    with start_exporter(prometheus.url, workdir, interval=interval) as exporter:
        for count in clients:
            start = time.time()
            # wrk asks as fast as it can: far more than any polling client, the worst case.
            answered = wrk(exporter.url + "/summary", count, seconds)
            phases.append(_phase(count, _instants(prometheus.query_log), start, answered))
    return _section(phases, interval)


def _section(phases: list[Phase], interval: float) -> Section:
    result = Section("Load on Prometheus: queries against clients")
    result.add(
        f"The exporter refreshing every {interval:g} s while wrk polls /summary as fast as it "
        f"can, with each number of connections in turn; the queries Prometheus ran, counted in "
        f"its query log over whole refresh cycles."
    )
    rows = [
        [
            f"{p.clients:,}",
            f"{p.answered:,}",
            p.refreshes,
            "/".join(map(str, sorted(p.queries_per_refresh))),
            f"{p.per_minute:.0f}",
        ]
        for p in phases
    ]
    headers = ["clients", "/summary answered", "refreshes", "queries per refresh", "queries/min"]
    result.add(table(headers, rows))
    first, last = phases[0], phases[-1]
    growth = last.per_minute / first.per_minute
    same_queries = len(first.queries_per_refresh | last.queries_per_refresh) == 1
    result.check(
        f"queries/min reaching Prometheus, {last.clients:,} clients / {first.clients}",
        ratio(growth),
        f"≤ {ratio(CONSTANT)} (constant)",
        growth <= CONSTANT and same_queries,
    )
    return result
