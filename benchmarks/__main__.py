"""Runs the benchmarks: `python -m benchmarks [--quick] [--output FILE] [--tree NAME=PATH]`.

The full run writes its report (machine, commands, date, every figure with its goal) to
--output; `--quick` is the regression guard: a short run of benchmarks 1 to 3 that exits 1 when
a ratio misses its goal.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import data, instructions, load, memory, refresh, serving
from benchmarks.common import REPO, BenchError, Check, Section, require, table, verdict

WINDOW = "5m"
WINDOW_S = 300.0
# Load on Prometheus: a short interval, so that a phase holds many refresh cycles.
LOAD_INTERVAL_S = 2.0


def _first_line(argv: Sequence[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    return (done.stdout or done.stderr).strip().splitlines()[0]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine() -> list[list[object]]:
    cpu = next(
        (
            line.partition(":")[2].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    head = _first_line(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--", "exporter"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    ).stdout.strip()
    load1, load5, _ = os.getloadavg()
    return [
        ["CPUs (nproc)", len(os.sched_getaffinity(0))],
        ["CPU model", cpu],
        ["memory", f"{mem_kib / 1024 / 1024:.1f} GiB"],
        ["kernel", platform.release()],
        ["Python", platform.python_version()],
        ["aiohttp", _version("aiohttp")],
        ["uvloop", _version("uvloop")],
        ["Prometheus", _first_line([require("prometheus"), "--version"])],
        ["wrk", _first_line([require("wrk"), "-v"])],
        ["valgrind", _first_line(["valgrind", "--version"]) if shutil.which("valgrind") else "-"],
        ["exporter", f"{head}" + (" with uncommitted changes in exporter/" if dirty else "")],
        ["load average at start (1, 5 min)", f"{load1:.2f}, {load5:.2f}"],
    ]


def run(quick: bool, trees: dict[str, Path], workdir: Path) -> list[Section]:
    tiers = (100, 10_000) if quick else (100, 10_000, 100_000)
    rounds = 3 if quick else 5
    sections: list[Section] = []
    figures: list[refresh.Figures] = []
    touched: dict[int, dict[str, int]] = {}
    rewrites: list[load.Rewrite] = []
    memories: list[memory.TierMemory] = []
    starts: list[memory.Start] = []
    loaded: memory.UnderLoad | None = None
    grafana: tuple[int, float, int] | None = None

    def per_tier(tier: data.Tier) -> None:
        url = tier.prometheus.url
        figures.append(refresh.measure(url, tier.series, rounds=rounds))
        at = time.time()
        touched[tier.series] = load.samples_touched(url, figures[-1].queries, at)
        rewrites.extend(load.try_rewrites(url, tier.series, WINDOW, at))
        if not quick:
            memories.append(
                memory.at_tier(url, workdir / "memory", tier.series, interval=5, refreshes=3)
            )

    # The smallest tier serves benchmarks 1, 3 and 4 as well: its data must outlive them.
    small = data.start_tier(tiers[0], workdir / "prometheus-small", window_s=WINDOW_S, live_s=900)
    try:
        url = small.prometheus.url
        sections.append(serving.run(url, workdir / "serving", quick=quick, trees=trees))
        if not quick:
            sections.append(instructions.run(url, workdir / "instructions"))
        phases = load.query_rate(
            small.prometheus,
            workdir / "load",
            clients=(1, 100, 1000),
            seconds=10 if quick else 30,
            interval=LOAD_INTERVAL_S,
        )
        if not quick:
            clients = 10
            per_minute, fields = load.grafana_style(
                small.prometheus, clients=clients, rounds=5, interval=LOAD_INTERVAL_S
            )
            grafana = (clients, per_minute, fields)
            starts = memory.start_times(url, workdir / "start", repeats=3)
            loaded = memory.under_load(url, workdir / "memory", connections=1000, seconds=10)
        per_tier(small)
    finally:
        small.prometheus.stop()
    for series in tiers[1:]:
        tier = data.start_tier(
            series, workdir / f"prometheus-{series}", window_s=WINDOW_S, live_s=300
        )
        try:
            per_tier(tier)
        finally:
            tier.prometheus.stop()
    sections.append(refresh.section(figures, rounds))
    rate = load.rate_section(phases, LOAD_INTERVAL_S, grafana)
    rate.add(
        "Samples Prometheus touches per refresh (stats=all, totalQueryableSamples, summed "
        "over the refresh's distinct queries at one instant; the five heaviest queries at the "
        "largest tier):"
    )
    rate.add(load.samples_table(touched, WINDOW))
    rate.add(
        "Catalog rewrites tried for fewer samples, kept only if no number changes (same "
        "instant, same data; values as Prometheus returns them):"
    )
    rate.add(load.rewrites_table(rewrites))
    sections.append(rate)
    if loaded is not None:
        sections.append(memory.section(starts, loaded, memories))
    return sections


def report(sections: Sequence[Section], facts: list[list[object]], took: float, date: str) -> str:
    checks: list[Check] = [c for s in sections for c in s.checks]
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {date}, in {took / 60:.1f} min. Every figure is a ratio "
        "measured side by side in this one run: the machines are shared and noisy, so absolute "
        "numbers move from run to run while the ratios hold. Goals and verdicts are in the "
        "first table; how each figure is measured is told in its section.",
        "",
        "## Machine",
        "",
        table(["", ""], facts),
        "",
        "## Commands",
        "",
        "```sh",
        "make bench        # everything (about 18 min); writes this file:",
        "                  # python -m benchmarks --output docs/benchmarks.md",
        "make bench-quick  # the regression guard (about 6 min): benchmarks 1-3, short;",
        "                  # exits 1 when a ratio misses its goal: python -m benchmarks --quick",
        "python -m benchmarks --tree NAME=PATH  # also measure the exporter package under PATH",
        "```",
        "",
        "Data: the gateway metrics of tests/integration/dataset.py (its busy phase), moved to "
        "the present and multiplied to 115, 10,005 and 100,050 series (replicas; more routes, "
        "models and providers), one sample per series every 15 s from 5.5 min before the run "
        "to a few minutes after it, backfilled with promtool into Prometheus by the "
        "integration harness (tests/integration/servers.py). Everything listens on 127.0.0.1.",
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
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short regression guard")
    parser.add_argument("--output", type=Path, help="write the report (Markdown) here")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="also serve /summary from the exporter package in PATH/exporter (repeatable)",
    )
    arguments = parser.parse_args(argv)
    trees = {}
    for item in arguments.tree:
        name, _, path = item.partition("=")
        trees[name] = Path(path).resolve()
    # valgrind counts instructions per request (1b), in the full run only.
    full_only = () if arguments.quick else ("valgrind", "callgrind_control")
    for binary in ("prometheus", "promtool", "wrk", *full_only):
        require(binary)
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = machine()
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="summary-exporter-bench-") as workdir:
            sections = run(arguments.quick, trees, Path(workdir))
    except BenchError as error:
        print(f"benchmarks: {error}", file=sys.stderr)
        return 2
    took = time.monotonic() - started
    load1, load5, _ = os.getloadavg()
    facts.append(["load average at end (1, 5 min)", f"{load1:.2f}, {load5:.2f}"])
    text = report(sections, facts, took, date)
    if arguments.output is not None:
        arguments.output.parent.mkdir(parents=True, exist_ok=True)
        arguments.output.write_text(text)
    checks = [c for s in sections for c in s.checks]
    failed = [c for c in checks if not c.passed]
    for c in checks:
        print(f"{verdict(c.passed).strip('*'):5} {c.name}: {c.measured} (goal {c.goal})")
    print(f"{len(checks) - len(failed)} of {len(checks)} goals met in {took:.0f} s")
    return 1 if arguments.quick and failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
