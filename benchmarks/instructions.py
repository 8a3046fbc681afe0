"""1b. Instructions per request: the cached /summary counted by callgrind, the bare app beside it.

CPU time per request moves with whatever else runs on a shared machine, by more than some
changes are worth; the instructions a server executes per request do not. Each server runs
under valgrind's callgrind with counting off; counting is on only while wrk loads it. The
counts are the server's user-space instructions: the kernel's work for its sockets is not in
them.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import (
    REPO,
    BenchError,
    Child,
    Exporter,
    Section,
    file_label,
    http_get,
    ratio,
    require,
    table,
    wrk,
)
from benchmarks.serving import BARE, CHANGES, CURRENT, checkout, commit_variant, start_bare
from harness.servers import wait_for

CONNECTIONS = 32
SECONDS = 10.0
# How much slower a Python process runs under callgrind, for the waits of its start.
SLOWDOWN = 15.0
# An hour: no refresh falls in the counted window (a refresh's own cost is benchmark 2's).
INTERVAL_S = 3600.0


@dataclass(frozen=True)
class Count:
    requests: int
    instructions: int

    @property
    def per_request(self) -> float:
        return self.instructions / self.requests


def _launcher(out: Path) -> list[str]:
    return [
        require("valgrind"),
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}/callgrind.out.%p",
    ]


def _control(option: str, pid: int) -> None:
    subprocess.run(
        [require("callgrind_control"), option, str(pid)],
        capture_output=True,
        timeout=60,
        check=True,
    )


def _dumped(out: Path, pid: int) -> int | None:
    """The instructions in the dump of `pid`, once callgrind has written it whole."""
    for dump in out.glob(f"callgrind.out.{pid}.*"):
        totals = re.search(r"^totals: (\d+)$", dump.read_text(), re.M)
        if totals is not None:
            return int(totals.group(1))
    return None


def count(server: Child, out: Path) -> Count:
    """The instructions `server` executes while wrk loads it, and the requests it answered."""
    wrk(server.url + "/summary", CONNECTIONS, 2)  # warm-up, not counted
    _control("--instr=on", server.pid)
    loaded = wrk(server.url + "/summary", CONNECTIONS, SECONDS)
    _control("--instr=off", server.pid)
    _control("--dump", server.pid)
    totals: list[int] = []

    def dumped() -> bool:
        instructions = _dumped(out, server.pid)
        if instructions is not None:
            totals.append(instructions)
        return instructions is not None

    if not wait_for(dumped, 60):
        raise BenchError(f"callgrind wrote no dump of {server.pid} in {out}")
    return Count(loaded.requests, totals[0])


def run(prometheus_url: str, workdir: Path) -> Section:
    """Counts the working tree, the commits of the changes marked `counted`, and the bare app
    serving the working tree's bytes; one server at a time, each stopped before the next."""
    trees = {CURRENT: REPO}
    for change in CHANGES:
        if change.counted:
            for commit in (change.before, change.after):
                trees[commit_variant(commit)] = checkout(commit, workdir / "trees" / commit)
    counts: dict[str, Count] = {}
    body = b""
    for name, tree in trees.items():
        out = workdir / file_label(name)
        with Exporter(
            prometheus_url,
            out,
            name=file_label(name),
            tree=tree,
            interval=INTERVAL_S,
            launcher=_launcher(out),
            slowdown=SLOWDOWN,
        ) as server:
            if name == CURRENT:
                status, body = http_get(server.url + "/summary", timeout=30)
                if status != 200:
                    raise BenchError(f"/summary answered {status} under callgrind")
            counts[name] = count(server, out)
    out = workdir / "bare"
    with start_bare(body, out, _launcher(out), SLOWDOWN) as bare:
        counts[BARE] = count(bare, out)
    return section(counts, len(body))


def section(counts: dict[str, Count], body_bytes: int) -> Section:
    bare = counts[BARE].per_request
    part = Section("1b. Instructions per request: cached /summary under callgrind")
    part.add(
        f"valgrind --tool=callgrind with counting off until wrk -t1 -c{CONNECTIONS} has "
        f"loaded the server for 2 s; then counted for {SECONDS:g} s, one server at a time "
        f"(the {body_bytes}-byte body of benchmark 1). The exporters refresh once an hour, so "
        f"no refresh falls in the count. Callgrind runs a process many times slower: each "
        f"request then falls in a millisecond of its own and rebuilds the body's age, which "
        f"at full speed the requests of one millisecond share; the exporter's count is an "
        f"upper bound by that much. Each server starts as `python -m`, with the type version "
        f"tags that gives it rather than benchmark 1's random shift, so that a count repeats "
        f"from run to run; it includes the type-cache collisions of that one layout."
    )
    part.add(
        table(
            ["variant", "requests counted", "instructions per request", "vs bare"],
            [
                [name, f"{c.requests:,}", f"{c.per_request:,.0f}", ratio(c.per_request / bare, 3)]
                for name, c in counts.items()
            ],
        )
    )
    lines = []
    for change in CHANGES:
        if change.counted:
            was = counts[commit_variant(change.before)].per_request
            now = counts[commit_variant(change.after)].per_request
            lines.append(
                f"- {change.what}: {was:,.0f} → {now:,.0f} instructions per request "
                f"({ratio(was / now, 3)} as many before)."
            )
    if lines:
        part.add("\n".join(["Before and after:", "", *lines]))
    return part
