"""What the benchmarks share: the exporter as a process or as its evaluator, wrk, the report.

Processes come from the harness (harness/servers.py): each listens on 127.0.0.1 only, every
wait is bounded, and each is stopped by its own PID.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from exporter.catalog import load_catalog
from exporter.recorded import RecordedUpstream, recorded_rules
from exporter.refresher import Evaluator
from exporter.settings import Settings
from harness.servers import ExporterProcess, http_get, require_binary, wait_for

INSTALL_HINT = "apt-get install -y --no-install-recommends prometheus wrk"
# The first refresh at 100,000 series takes seconds on two shared cores.
FRESH_TIMEOUT_S = 60.0


class BenchError(RuntimeError):
    """A benchmark could not run (a missed goal is a failed Check instead)."""


def start_exporter(
    prometheus_url: str, workdir: Path, variables: Mapping[str, str] | None = None
) -> ExporterProcess:
    """`python -m exporter serve` with shipped settings but the upstream and `variables`;
    started once /readyz answers."""
    shipped = {
        "EXPORTER_PROMETHEUS_URL": prometheus_url,
        "EXPORTER_LOG_LEVEL": "WARNING",
        "PYTHONHASHSEED": "0",
    }
    return ExporterProcess.start(workdir, shipped | dict(variables or {}))


def wait_until_fresh(exporter: ExporterProcess, interval: float = 0.05) -> None:
    """Until /summary serves a snapshot that reached the upstream for every field."""

    def fresh() -> bool:
        status, body = http_get(exporter.url + "/summary", timeout=1.0)
        return status == 200 and json.loads(body).get("stale") is False

    if not wait_for(fresh, FRESH_TIMEOUT_S, interval):
        raise BenchError(f"no fresh /summary after {FRESH_TIMEOUT_S} s:\n{exporter.log_tail()}")


def evaluator(settings: Settings, client: RecordedUpstream) -> Evaluator:
    """The exporter's evaluator of the shipped catalog over `client`, as `serve` builds it."""
    return Evaluator(
        load_catalog(None),
        client,
        max_concurrency=settings.max_concurrent_queries,
        limits=settings.table_limits,
        max_bytes=settings.max_refresh_bytes,
        recorded=recorded_rules(settings, client),
    )


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

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        self.add(table(headers, rows))

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
