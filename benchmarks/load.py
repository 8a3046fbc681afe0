"""(b) Load on Prometheus: the queries that reach it, with one client and with many.

Prometheus writes every query it runs to its query log (the harness sets `query_log_file`),
so what reaches it is counted there, not inferred from the exporter.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from benchmarks.common import BenchError, Section, ratio, start_exporter, wrk
from harness.servers import PrometheusServer

INTERVAL_S = 2.0  # a short refresh interval: many refreshes in each phase
# Queries per minute may not grow with clients; 5 % covers a refresh that starts a little late.
CONSTANT = 1.05


def run(
    prometheus: PrometheusServer, workdir: Path, clients: Sequence[int], seconds: float
) -> Section:
    result = Section("Load on Prometheus: queries against clients")
    result.add(
        f"The exporter refreshing every {INTERVAL_S:g} s while wrk polls /summary as fast as it "
        f"can, with each number of connections in turn; the queries Prometheus ran, counted in "
        f"its query log over whole refresh cycles."
    )
    rows, per_minute, sizes = [], [], []
    interval = {"EXPORTER_REFRESH_INTERVAL": f"{INTERVAL_S:g}"}
    with start_exporter(prometheus.url, workdir, interval) as exporter:
        for count in clients:
            start = time.time()
            # wrk asks as fast as it can: far more than any polling client, the worst case.
            answered = wrk(exporter.url + "/summary", count, seconds).requests
            # How many queries Prometheus ran at each evaluation instant, that is, per refresh.
            per_instant = Counter(
                datetime.fromisoformat(entry["params"]["start"]).timestamp()
                for entry in prometheus.logged()
            )
            instants = sorted(at for at in per_instant if at >= start)
            if len(instants) < 3:
                raise BenchError(f"{len(instants)} refreshes seen with {count} clients")
            # Whole refresh cycles: the queries of every refresh but the last, over the time
            # from the first refresh to the last.
            done = [per_instant[at] for at in instants[:-1]]
            per_minute.append(sum(done) * 60 / (instants[-1] - instants[0]))
            sizes.append(set(done))
            queries = "/".join(map(str, sorted(sizes[-1])))
            rows.append(
                [f"{count:,}", f"{answered:,}", len(done), queries, f"{per_minute[-1]:.0f}"]
            )
    headers = ["clients", "/summary answered", "refreshes", "queries per refresh", "queries/min"]
    result.table(headers, rows)
    growth = per_minute[-1] / per_minute[0]
    passed = growth <= CONSTANT and len(sizes[0] | sizes[-1]) == 1
    name = f"queries/min reaching Prometheus, {clients[-1]:,} clients / {clients[0]}"
    result.check(name, ratio(growth), f"≤ {ratio(CONSTANT)} (constant)", passed)
    return result
