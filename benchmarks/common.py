"""What the benchmarks share: the exporter as a process, HTTP probes, wrk, RSS, the report.

Processes come from the harness (harness/servers.py): each listens on 127.0.0.1 only, every
wait is bounded, and each is stopped by its own PID.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.servers import ExporterProcess, require_binary, wait_for

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus wrk"
# The first refresh at 100,000 series takes seconds on two shared cores.
FRESH_TIMEOUT_S = 60.0

# Probes go straight to 127.0.0.1: an http_proxy from the environment must not reroute them.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BenchError(RuntimeError):
    """A benchmark could not run (a missed goal is a failed Check instead)."""


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


def start_exporter(
    prometheus_url: str,
    workdir: Path,
    *,
    interval: float = 15.0,
    hash_seed: int = 0,
    max_connections: int | None = None,
) -> ExporterProcess:
    """`python -m exporter serve` with shipped defaults but the upstream, the interval and,
    when given, the connection limit; started once /readyz answers."""
    variables = {
        "EXPORTER_PROMETHEUS_URL": prometheus_url,
        "EXPORTER_REFRESH_INTERVAL": f"{interval:g}",
        "EXPORTER_LOG_LEVEL": "WARNING",
        "PYTHONHASHSEED": str(hash_seed),
    }
    if max_connections is not None:
        variables["EXPORTER_MAX_CONNECTIONS"] = str(max_connections)
    return ExporterProcess.start(workdir, variables)


def wait_until_fresh(exporter: ExporterProcess, interval: float = 0.05) -> None:
    """Until /summary serves a snapshot that reached the upstream for every field."""

    def fresh() -> bool:
        status, body = http_get(exporter.url + "/summary", timeout=1.0)
        return status == 200 and json.loads(body).get("stale") is False

    if not wait_for(fresh, FRESH_TIMEOUT_S, interval):
        raise BenchError(f"no fresh /summary after {FRESH_TIMEOUT_S} s:\n{exporter.log_tail()}")


@dataclass(frozen=True)
class WrkResult:
    requests_per_s: float
    requests: int
    errors: int  # socket errors (connect, read, write, timeout) and non-2xx answers


def wrk(url: str, connections: int, seconds: float) -> WrkResult:
    """One wrk run with one thread."""
    argv = [require_binary("wrk", INSTALL_HINT), "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    done = subprocess.run(
        [*argv, "--timeout", "2s", url], capture_output=True, text=True, timeout=seconds + 60
    )
    out = done.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if done.returncode != 0 or rate is None or total is None:
        raise BenchError(f"wrk failed ({done.returncode}): {out}{done.stderr}")
    errors = re.findall(r"(?:connect|read|write|timeout|responses:) (\d+)", out)
    return WrkResult(float(rate.group(1)), int(total.group(1)), sum(map(int, errors)))


# The report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One figure against its goal."""

    name: str
    measured: str
    goal: str
    passed: bool


@dataclass
class Section:
    """A benchmark's part of docs/benchmarks.md: how it measures, its tables, its checks."""

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
