"""(d) Serving: the exporter's /summary against a bare aiohttp app serving the same bytes.

Each side runs as several processes, each with its own PYTHONHASHSEED: how a process happens
to lay itself out at start moves its CPU time per request by several per cent.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.common import (
    BenchError,
    Section,
    WrkResult,
    ratio,
    start_exporter,
    wait_until_fresh,
    wrk,
)
from harness.servers import ServerProcess, free_port, http_get

GOAL = 0.80
CONNECTIONS = 32
SECONDS = 1
BARE, EXPORTER = "bare aiohttp", "exporter"

Round = tuple[WrkResult, float]  # a wrk run and the server's own CPU µs per request


def run(prometheus_url: str, workdir: Path, processes: int, rounds: int) -> Section:
    with contextlib.ExitStack() as stack:
        exporters = [
            stack.enter_context(
                start_exporter(
                    prometheus_url, workdir / f"exporter-{seed}", {"PYTHONHASHSEED": str(seed)}
                )
            )
            for seed in range(processes)
        ]
        for exporter in exporters:
            wait_until_fresh(exporter)
        status, body = http_get(exporters[0].url + "/summary", timeout=5)
        if status != 200:
            raise BenchError(f"/summary answered {status}")
        bares = [
            stack.enter_context(_start_bare(body, workdir / f"bare-{seed}", seed))
            for seed in range(processes)
        ]
        servers: list[ServerProcess] = [*bares, *exporters]
        cores = stack.enter_context(_cores(servers))
        for server in servers:
            wrk(server.url + "/summary", CONNECTIONS, 1)  # warm-up: connections, imports
        measured: dict[int, list[Round]] = {server.pid: [] for server in servers}
        # One server at a time, round after round, each round in another order.
        for turn in range(rounds):
            shift = turn % len(servers)
            for server in servers[shift:] + servers[:shift]:
                measured[server.pid].append(_round(server, cores))
    sides = {BARE: [measured[s.pid] for s in bares], EXPORTER: [measured[s.pid] for s in exporters]}
    return _section(sides, len(body), rounds)


def _start_bare(body: bytes, workdir: Path, hash_seed: int) -> ServerProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    body_file = workdir / "summary.json"
    body_file.write_bytes(body)
    port = free_port()
    argv = [sys.executable, "-m", "benchmarks.bare", str(port), str(body_file)]
    env = os.environ | {"PYTHONHASHSEED": str(hash_seed)}
    return ServerProcess(argv, port, workdir / "bare.log", "/summary", env)


def _round(server: ServerProcess, cores: tuple[int, int] | None) -> Round:
    """One wrk run on `server`, with the core of its own when there are two: a saturated
    server's CPU time per request tells the throughput it reaches on a core of its own."""
    if cores is not None:
        os.sched_setaffinity(server.pid, {cores[1]})
    before = _cpu_seconds(server.pid)
    run = wrk(server.url + "/summary", CONNECTIONS, SECONDS)
    cpu_us = (_cpu_seconds(server.pid) - before) / run.requests * 1e6
    if cores is not None:
        os.sched_setaffinity(server.pid, {cores[0]})
    return run, cpu_us


def _cpu_seconds(pid: int) -> float:
    """The time the process' main thread, which serves every request, has run on a CPU."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


@contextlib.contextmanager
def _cores(servers: list[ServerProcess]) -> Iterator[tuple[int, int] | None]:
    """(shared, own): every server, this process and wrk on the first core of this process;
    the second is for the server being measured. None with a single core."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        yield None
        return
    for server in servers:
        os.sched_setaffinity(server.pid, {allowed[0]})
    os.sched_setaffinity(0, {allowed[0]})
    try:
        yield allowed[0], allowed[1]
    finally:
        os.sched_setaffinity(0, allowed)


def _section(sides: dict[str, list[list[Round]]], body_bytes: int, rounds: int) -> Section:
    # Neighbours on a shared machine only ever add time, so each process' best round counts.
    cpu = {name: [min(us for _, us in p) for p in procs] for name, procs in sides.items()}
    rate = {
        name: [max(run.requests_per_s for run, _ in p) for p in procs]
        for name, procs in sides.items()
    }
    errors = {name: sum(run.errors for p in procs for run, _ in p) for name, procs in sides.items()}
    capacity = statistics.fmean(cpu[BARE]) / statistics.fmean(cpu[EXPORTER])
    result = Section("Serving: the exporter against a bare aiohttp app")
    result.add(
        f"GET /summary (no parameters: the background snapshot, {body_bytes} bytes) from the "
        f"exporter and from a bare aiohttp app (benchmarks/bare.py) serving the same bytes "
        f"with the same backlog and no access log, each side as {len(cpu[BARE])} processes "
        f"with their own PYTHONHASHSEED. `wrk -t1 -c{CONNECTIONS} -d{SECONDS}s` loads one "
        f"server at a time, {rounds} rounds in turn; the server loaded has a core of its own, "
        f"wrk and the idle servers share the other. The figure is the ratio of CPU time per "
        f"request (/proc/PID/schedstat): the throughput each reaches on a core of its own. "
        f"Requests per second, which also depend on what neighbours take from that core, are "
        f"shown, not judged. Each process counts by its best round, a side by the mean over "
        f"its processes."
    )
    result.table(
        ["server", "CPU µs per request (processes' range)", "req/s", "errors"],
        [
            [
                name,
                f"{statistics.fmean(cpu[name]):.1f} ({min(cpu[name]):.1f} to {max(cpu[name]):.1f})",
                f"{statistics.fmean(rate[name]):,.0f}",
                errors[name],
            ]
            for name in (BARE, EXPORTER)
        ],
    )
    result.check(
        f"serving throughput on a core, exporter / bare aiohttp ({CONNECTIONS} connections)",
        ratio(capacity, 3),  # three digits: 0.796 is no pass at 0.80
        f"≥ {ratio(GOAL)}",
        capacity >= GOAL and errors[EXPORTER] == 0,
    )
    return result
