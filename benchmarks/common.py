"""What every benchmark needs: child processes, the exporter, wrk, HTTP probes, RSS, reports.

Every child is started here and stopped by its own PID; every wait is bounded in count and
time; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import layout
from exporter.catalog import load_catalog
from harness.servers import ChildProcess, free_port, wait_for

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
HOST = "127.0.0.1"

# Fine polling: start-up is measured with it, and a 50 ms step would be most of the figure.
POLL_S = 0.005
START_TIMEOUT_S = 20.0
# The first refresh at 100,000 series takes seconds on two shared cores.
FRESH_TIMEOUT_S = 60.0

# Probes go straight to 127.0.0.1: an http_proxy from the environment must not reroute them.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(RuntimeError):
    """A benchmark could not be set up or run (not a goal missed: that is a failed Check)."""


def require(binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise BenchError(
            f"{binary} is not installed; install it with: "
            "apt-get install -y --no-install-recommends prometheus wrk valgrind"
        )
    return found


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    """Status and body; (0, b"") when nothing answers."""
    try:
        with _HTTP.open(url, timeout=timeout) as response:
            status: int = response.status
            body: bytes = response.read()
            return status, body
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def http_post(url: str, form: bytes, timeout: float = 60.0) -> Any:
    with _HTTP.open(url, data=form, timeout=timeout) as response:
        return json.loads(response.read())


class Child(ChildProcess):
    """A child process of a benchmark, timed from its spawn, and where it serves HTTP, if it
    does."""

    def __init__(
        self,
        argv: Sequence[str],
        log: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        url: str = "",
    ) -> None:
        self.url = url
        self.started = time.perf_counter()
        super().__init__(argv, log, env=env, cwd=cwd)


def file_label(variant: str) -> str:
    """A variant's name as a file or directory name: `exporter (working tree)` ->
    `exporter-working-tree`."""
    return re.sub(r"[^\w.]+", "-", variant).strip("-")


def python_module(module: str, tag_shift: int | None = None) -> list[str]:
    """The argv of `python -m module`, through benchmarks.layout when given a shift."""
    if tag_shift is None:
        return [PYTHON, "-m", module]
    return [PYTHON, "-m", layout.MODULE, str(tag_shift), module]


class Exporter(Child):
    """summary-exporter as a real process, timed from spawn to /healthz and to a fresh snapshot."""

    def __init__(
        self,
        prometheus_url: str,
        workdir: Path,
        *,
        name: str = "exporter",
        tree: Path = REPO,
        module: str = "exporter",
        interval: float = 15.0,
        window: str = "5m",
        launcher: Sequence[str] = (),
        slowdown: float = 1.0,
        tag_shift: int | None = None,
    ) -> None:
        """`launcher` runs the interpreter (valgrind, say); `slowdown` stretches the waits for
        /healthz and the first fresh snapshot by as much as it slows the process; `tag_shift`
        starts it through benchmarks.layout."""
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
        env.update(
            {
                # The tree under test first: another checkout (an older commit) can be measured
                # beside the working tree with the same interpreter and dependencies.
                "PYTHONPATH": os.pathsep.join([str(tree), str(REPO)]),
                "EXPORTER_PROMETHEUS_URL": prometheus_url,
                "EXPORTER_HOST": HOST,
                "EXPORTER_PORT": str(self.port),
                "EXPORTER_REFRESH_INTERVAL": f"{interval:g}",
                "EXPORTER_WINDOW": window,
                "EXPORTER_LOG_LEVEL": "WARNING",
            }
        )
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__(
            [*launcher, *python_module(module, tag_shift), "serve"],
            workdir / f"{name}.log",
            env=env,
            cwd=tree,
            url=f"http://{HOST}:{self.port}",
        )
        self.name = name
        try:
            self.healthy_after = self._time_until(
                self._healthy, START_TIMEOUT_S * slowdown, "/healthz"
            )
            self.fresh_after = self._time_until(
                self.fresh, FRESH_TIMEOUT_S * slowdown, "a fresh /summary"
            )
        except BaseException:
            self.stop()
            raise

    def _time_until(self, condition: Callable[[], bool], timeout: float, what: str) -> float:
        ended_or_met = wait_for(lambda: not self.running() or condition(), timeout, POLL_S)
        if not ended_or_met or not self.running():
            raise BenchError(f"{self.name}: no {what} after {timeout} s:\n{self.log_tail()}")
        return time.perf_counter() - self.started

    def _healthy(self) -> bool:
        return http_get(self.url + "/healthz", timeout=1.0)[0] == 200

    def summary(self) -> dict[str, Any]:
        status, body = http_get(self.url + "/summary")
        if status != 200:
            raise BenchError(f"{self.name}: /summary answered {status}: {body[:200]!r}")
        document: dict[str, Any] = json.loads(body)
        return document

    def fresh(self) -> bool:
        """A background snapshot that reached the upstream for every field."""
        status, body = http_get(self.url + "/summary", timeout=1.0)
        return status == 200 and json.loads(body).get("stale") is False

    def refreshes(self) -> tuple[int, float]:
        """(refreshes done, their total seconds), from the exporter's own histogram."""
        _, body = http_get(self.url + "/metrics")
        text = body.decode()
        count = re.search(r"^summary_exporter_refresh_duration_seconds_count (\S+)$", text, re.M)
        total = re.search(r"^summary_exporter_refresh_duration_seconds_sum (\S+)$", text, re.M)
        if count is None or total is None:
            raise BenchError(f"{self.name}: no refresh histogram on /metrics")
        return int(float(count.group(1))), float(total.group(1))

    def memory_kib(self) -> tuple[int, int]:
        return rss_kib(self.pid)


def rss_kib(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process in KiB: resident now, and the peak so far."""
    values = dict.fromkeys(("VmRSS", "VmHWM"), 0)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in values:
            values[key] = int(rest.split()[0])
    return values["VmRSS"], values["VmHWM"]


_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far."""
    # The fields after the parenthesised command name, which may itself contain spaces.
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    p99_ms: float
    requests: int
    # By kind: wrk's socket errors (connect, read, write, timeout) and non-2xx answers. A
    # timeout and a refused connection call for different fixes, so the kinds stay apart.
    errors: Counter[str]
    # CPU the server spent per request: neighbours on the machine change it less than
    # throughput (only through the caches they share), so it tells a real change from noise.
    cpu_us_per_request: float = math.nan
    # Connections the kernel dropped from a full accept queue during the run (machine-wide,
    # but only the server under test opens new connections then).
    listen_overflows: int = 0


def describe_errors(errors: Counter[str]) -> str:
    """`0`, or each kind that happened with its count: `timeout 25, read 2`."""
    kinds = [f"{kind} {count}" for kind, count in sorted(errors.items()) if count]
    return ", ".join(kinds) or "0"


_WRK_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def listen_overflows() -> int:
    """Connections dropped from full accept queues on this machine since boot."""
    lines = Path("/proc/net/netstat").read_text().splitlines()
    # Pairs of lines: `TcpExt: Name ...` then `TcpExt: value ...`.
    for names, values in zip(lines[::2], lines[1::2], strict=True):
        if names.startswith("TcpExt:"):
            counters = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(counters["ListenOverflows"])
    raise BenchError("no TcpExt counters in /proc/net/netstat")


def wrk(url: str, connections: int, seconds: float, *, server_pid: int | None = None) -> WrkResult:
    """One wrk run, with one thread so that the server keeps the other core.

    With `server_pid`, the server's CPU time over the run is measured too.
    """
    threads = 1
    cpu_before = cpu_seconds(server_pid) if server_pid is not None else math.nan
    overflows_before = listen_overflows()
    argv = [
        require("wrk"),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "2s",
        "--latency",
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    cpu = cpu_seconds(server_pid) - cpu_before if server_pid is not None else math.nan
    overflows = listen_overflows() - overflows_before
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    total = re.search(r"(\d+) requests in", out)
    if done.returncode != 0 or rate is None or p99 is None or total is None:
        raise BenchError(f"wrk failed ({done.returncode}): {out}{done.stderr}")
    errors: Counter[str] = Counter()
    socket_errors = re.search(
        r"Socket errors: connect (?P<connect>\d+), read (?P<read>\d+), "
        r"write (?P<write>\d+), timeout (?P<timeout>\d+)",
        out,
    )
    if socket_errors:
        errors.update({kind: int(n) for kind, n in socket_errors.groupdict().items()})
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non_2xx:
        errors["non-2xx"] = int(non_2xx.group(1))
    requests = int(total.group(1))
    return WrkResult(
        requests_per_s=float(rate.group(1)),
        p99_ms=float(p99.group(1)) * _WRK_UNITS[p99.group(2)],
        requests=requests,
        errors=errors,
        cpu_us_per_request=cpu / max(requests, 1) * 1e6,
        listen_overflows=overflows,
    )


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def rotated(items: Sequence[str], turn: int) -> list[str]:
    """The items starting at a different one each turn, so no variant always runs first."""
    shift = turn % len(items)
    return [*items[shift:], *items[:shift]]


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as took:` leaves the elapsed seconds in took[0]."""
    took: list[float] = []
    started = time.perf_counter()
    try:
        yield took
    finally:
        took.append(time.perf_counter() - started)


def query_label(promql: str, window: str) -> str:
    """The fields (domain.name) of the built-in catalog a PromQL serves, or its first words."""
    names = [
        f"{domain}.{name}"
        for domain, name, spec in load_catalog(None).fields()
        if spec.render(window) == promql
    ]
    return ", ".join(names) or "not a field: `" + " ".join(promql.split())[:60] + "...`"


# Reports ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One measured figure against its goal."""

    name: str
    measured: str
    goal: str
    passed: bool


@dataclass
class Section:
    """A benchmark's part of docs/benchmarks.md: prose and tables, and the checks it makes."""

    title: str
    body: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.body.append(text)

    def check(self, name: str, measured: str, goal: str, passed: bool) -> None:
        self.checks.append(Check(name, measured, goal, passed))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}\N{MULTIPLICATION SIGN}"


def verdict(passed: bool) -> str:
    return "pass" if passed else "**FAIL**"
