"""Runs the benchmarks: `python -m benchmarks [--quick] [--output FILE]`.

Writes the report (machine, command, every figure with its goal) to --output, prints the
checks, and exits 1 when a figure misses its goal: with --quick, the regression guard.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import data, fleet, load, memory, refresh, serving
from benchmarks.common import INSTALL_HINT, BenchError, Section, table, verdict
from harness.servers import ServerError, require_binary


def _first_line(argv: Sequence[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return (done.stdout or done.stderr or "\n").splitlines()[0].strip()


def _load_average() -> str:
    return "{:.2f}, {:.2f}".format(*os.getloadavg()[:2])


def machine() -> list[list[object]]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    git = ["git", "-C", str(Path(__file__).resolve().parents[1])]
    changed = _first_line([*git, "status", "--porcelain", "--", "exporter"])
    commit = _first_line([*git, "log", "-1", "--format=%h", "--", "exporter"])
    return [
        ["CPUs", f"{os.cpu_count()}, shared with others running test suites during the run"],
        ["CPU model", cpuinfo.partition("model name")[2].partition(":")[2].split("\n")[0].strip()],
        ["Python", platform.python_version()],
        ["aiohttp", importlib.metadata.version("aiohttp")],
        ["Prometheus", _first_line([require_binary("prometheus"), "--version"])],
        ["wrk", _first_line([require_binary("wrk", INSTALL_HINT), "-v"])],
        ["exporter/ as of commit", commit + (" with uncommitted changes" if changed else "")],
        ["load average at start (1, 5 min)", _load_average()],
    ]


def run(quick: bool, workdir: Path) -> list[Section]:
    # The dataset as it is (a few hundred series), then copies of it.
    sizes = (1, 10_000) if quick else (1, 10_000, 100_000)
    rounds = 5 if quick else 10
    tiers: list[refresh.Tier] = []
    memories: dict[int, tuple[float, float]] = {}
    for size in sizes:
        # The smallest tier serves every benchmark: its data outlives them all.
        live_s = 1200 if size == sizes[0] else 300
        series, prometheus = data.start_tier(size, workdir / f"{size}", live_s)
        with prometheus:
            url = prometheus.url
            if size == sizes[0]:
                served = serving.run(
                    url, workdir / "serving", 3 if quick else 4, 8 if quick else 20
                )
                clients = (1, 100) if quick else (1, 100, 1000)
                asked = load.run(prometheus, workdir / "load", clients, 10 if quick else 20)
                starts = memory.start_times(url, workdir / "memory", 3 if quick else 5)
                loaded = memory.under_load(url, workdir / "memory")
            tiers.append(refresh.measure(url, series, rounds))
            memories[series] = memory.at_tier(url, workdir / "memory" / f"tier-{series}")
    sections = [refresh.section(tiers, rounds), asked, memory.section(starts, loaded, memories)]
    sections.append(served)
    if not quick:
        sections.append(fleet.run(sizes, workdir / "fleet", rounds=5, seconds=45))
    return sections


def report(sections: Sequence[Section], facts: list[list[object]], took: float) -> str:
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    checks = [c for s in sections for c in s.checks]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks --output docs/benchmarks.md`) on "
        f"{date}, in {took / 60:.1f} min, on a shared machine (below): absolute numbers move "
        "from run to run, so every comparison is measured side by side in this one run. "
        "`make bench-quick` (`python -m benchmarks --quick`, a few minutes) measures the same "
        "figures on fewer series and for less time, and exits 1 when one misses its goal.",
        "",
        "Data: the gateway metrics of tests/integration/dataset.py (its busy phase), moved to "
        "the present, as they are and multiplied to about 10,000 and 100,000 series (replicas; "
        "more routes, models and providers), one sample per series every 15 s, backfilled with "
        "promtool into a real Prometheus (harness/servers.py). Everything listens on 127.0.0.1; "
        "the exporter runs with its shipped settings.",
        "",
        "## Results",
        "",
        table(
            ["figure", "measured", "goal", "result"],
            [[c.name, c.measured, c.goal, verdict(c.passed)] for c in checks],
        ),
        "",
    ]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for part in section.body:
            lines += [part, ""]
    lines += ["## Machine", "", table(["", ""], facts), ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short regression guard")
    parser.add_argument("--output", type=Path, help="write the report (Markdown) here")
    arguments = parser.parse_args(argv)
    # The figures are for the shipped settings, not for this shell's EXPORTER_*.
    for name in [name for name in os.environ if name.startswith("EXPORTER_")]:
        del os.environ[name]
    started = time.monotonic()
    try:
        facts = machine()
        with tempfile.TemporaryDirectory(prefix="summary-exporter-bench-") as workdir:
            sections = run(arguments.quick, Path(workdir))
    except (BenchError, ServerError) as error:
        print(f"benchmarks: {error}", file=sys.stderr)
        return 2
    took = time.monotonic() - started
    facts.append(["load average at end (1, 5 min)", _load_average()])
    if arguments.output is not None:
        arguments.output.write_text(report(sections, facts, took))
    checks = [c for s in sections for c in s.checks]
    for c in checks:
        print(f"{verdict(c.passed).strip('*'):5} {c.name}: {c.measured} (goal {c.goal})")
    failed = sum(not c.passed for c in checks)
    print(f"{len(checks) - failed} of {len(checks)} goals met in {took:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
