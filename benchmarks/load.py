"""3. Load on Prometheus: the queries that reach it, and the samples they touch.

Prometheus writes every query it runs to its query log (the harness configures
`query_log_file`), so what reaches it is counted there, not inferred from the exporter.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp

from benchmarks.common import (
    Exporter,
    Section,
    WrkResult,
    http_post,
    query_label,
    ratio,
    table,
    wrk,
)
from exporter.catalog import load_catalog
from harness.servers import PrometheusServer

# Queries per minute may not grow with clients; 5 % covers a refresh started a little late.
CONSTANT = 1.05


@dataclass(frozen=True)
class Logged:
    ts: float  # when Prometheus ran the query
    instant: float  # the evaluation instant asked for
    query: str


def read_query_log(path: Path) -> list[Logged]:
    entries = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        entries.append(
            Logged(
                ts=_unix(entry["ts"]),
                instant=_unix(entry["params"]["start"]),
                query=entry["params"]["query"],
            )
        )
    return entries


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass(frozen=True)
class Phase:
    clients: int
    refreshes: int
    queries_per_refresh: tuple[int, ...]
    per_minute: float
    wrk: WrkResult


def _phase(
    clients: int, entries: Sequence[Logged], start: float, end: float, run: WrkResult
) -> Phase:
    """Queries per minute over whole refresh cycles: from the first refresh in the phase to the
    last, counting everything Prometheus ran in between, so no partial cycle skews it."""
    per_instant = Counter(e.instant for e in entries if start <= e.instant < end)
    instants = sorted(per_instant)
    if len(instants) < 2:
        raise RuntimeError(f"{len(instants)} refreshes seen in a {end - start:.0f} s phase")
    first, last = instants[0], instants[-1]
    ran = sum(1 for e in entries if first <= e.ts < last)
    return Phase(
        clients=clients,
        refreshes=len(instants),
        # The last refresh may still have queries in flight when the log is read.
        queries_per_refresh=tuple(sorted({per_instant[i] for i in instants[:-1]})),
        per_minute=ran * 60 / (last - first),
        wrk=run,
    )


def query_rate(
    prometheus: PrometheusServer,
    workdir: Path,
    *,
    clients: Sequence[int],
    seconds: float,
    interval: float,
) -> list[Phase]:
    """Queries per minute reaching Prometheus while `clients` connections poll /summary."""
    phases = []
    with Exporter(prometheus.url, workdir, name="exporter-load", interval=interval) as exporter:
        for count in clients:
            start = time.time()
            # wrk polls as fast as it can: far more than any real client, the worst case.
            run = wrk(exporter.url + "/summary", count, seconds)
            phases.append(
                _phase(count, read_query_log(prometheus.query_log), start, time.time(), run)
            )
    return phases


async def _grafana(
    url: str, queries: Sequence[str], clients: int, rounds: int, every: float
) -> None:
    async with aiohttp.ClientSession(trust_env=False) as session:

        async def ask(promql: str) -> None:
            form = {"query": promql, "time": f"{time.time():.3f}"}
            async with session.post(f"{url}/api/v1/query", data=form) as response:
                await response.read()

        async def client() -> None:
            for turn in range(rounds):
                started = time.monotonic()
                # A dashboard refresh: every panel (field) asks its own query at once.
                await asyncio.gather(*(ask(q) for q in queries))
                if turn < rounds - 1:
                    await asyncio.sleep(max(0.0, every - (time.monotonic() - started)))

        await asyncio.gather(*(client() for _ in range(clients)))


def grafana_style(
    prometheus: PrometheusServer, *, clients: int, rounds: int, interval: float
) -> tuple[float, int]:
    """Queries per minute when each client asks each field itself; and the fields per client."""
    fields = [spec.render("5m") for _, _, spec in load_catalog(None).fields()]
    start = time.time()
    asyncio.run(_grafana(prometheus.url, fields, clients, rounds, interval))
    end = time.time()
    ran = sum(1 for e in read_query_log(prometheus.query_log) if start <= e.ts <= end + 1)
    return ran * 60 / (rounds * interval), len(fields)


def samples_touched(url: str, queries: Sequence[str], at: float) -> dict[str, int]:
    """Samples Prometheus loads for each query at `at` (stats=all, totalQueryableSamples)."""
    touched = {}
    for promql in queries:
        form = urllib.parse.urlencode(
            {"query": promql, "time": f"{at:.3f}", "stats": "all"}
        ).encode()
        answer = http_post(f"{url}/api/v1/query", form)
        touched[promql] = int(answer["data"]["stats"]["samples"]["totalQueryableSamples"])
    return touched


def value_of(url: str, promql: str, at: float) -> float | None:
    form = urllib.parse.urlencode({"query": promql, "time": f"{at:.3f}"}).encode()
    result = http_post(f"{url}/api/v1/query", form)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def rate_section(
    phases: Sequence[Phase], interval: float, grafana: tuple[int, float, int] | None
) -> Section:
    """`grafana`: (clients, their measured queries/min, fields per client), when measured."""
    section = Section("3. Load on Prometheus")
    per_refresh = sorted({n for p in phases for n in p.queries_per_refresh})
    section.add(
        f"The exporter refreshing every {interval:g} s while wrk polls /summary as fast as it "
        f"can with 1, 100 and 1,000 connections (far more than polling clients would ask); "
        f"queries per minute counted in Prometheus' query log over whole refresh cycles."
    )
    rows = [
        [
            f"{p.clients:,}",
            f"{p.wrk.requests:,}",
            p.refreshes,
            "/".join(map(str, p.queries_per_refresh)),
            f"{p.per_minute:.0f}",
        ]
        for p in phases
    ]
    section.add(
        table(
            ["clients", "/summary answered", "refreshes", "queries per refresh", "queries/min"],
            rows,
        )
    )
    rates = [p.per_minute for p in phases]
    spread = max(rates) / min(rates)
    section.check(
        "queries/min reaching Prometheus, 1,000 clients / 1 client",
        ratio(phases[-1].per_minute / phases[0].per_minute),
        f"≤ {ratio(CONSTANT)} (constant)",
        phases[-1].per_minute / phases[0].per_minute <= CONSTANT and len(per_refresh) == 1,
    )
    queries = per_refresh[-1]
    fields = len(load_catalog(None).fields())
    if grafana is not None:
        clients, measured, fields = grafana
        section.add(
            f"Grafana-style direct querying, where each client asks each of the catalog's "
            f"{fields} fields itself every {interval:g} s: {clients} such clients, measured in "
            f"the same query log, sent {measured:.0f} queries/min, "
            f"{ratio(measured / min(rates))} the exporter's (computed: {clients} clients x "
            f"{fields} fields / {queries} queries per refresh = "
            f"{ratio(clients * fields / queries)}). The spread of the exporter's rate over the "
            f"three phases is {ratio(spread)}."
        )
    section.add(
        table(
            [
                "clients",
                "exporter queries/min (measured)",
                "Grafana-style queries/min (computed)",
                "ratio",
            ],
            [
                [
                    f"{n:,}",
                    f"{min(rates):.0f}",
                    f"{n * fields * 60 / interval:,.0f}",
                    ratio(n * fields / queries),
                ]
                for n in (1, 10, 100, 1000)
            ],
        )
    )
    return section


def samples_table(tiers: Mapping[int, Mapping[str, int]], window: str) -> str:
    """Samples per refresh per tier, with the heaviest queries named."""
    largest = max(tiers)
    heaviest = sorted(tiers[largest], key=lambda q: -tiers[largest][q])[:5]
    rows: list[list[object]] = [
        ["**all, per refresh**", *(f"**{sum(t.values()):,}**" for t in tiers.values())]
    ]
    for promql in heaviest:
        rows.append(
            [query_label(promql, window), *(f"{t.get(promql, 0):,}" for t in tiers.values())]
        )
    return table(["query", *(f"{series:,} series" for series in tiers)], rows)


# Rewrites that might read fewer samples, by field; each is kept only if no number changes.
REWRITES = {
    # The mean over the models that had requests, read once instead of twice.
    "models.avg_requests_per_model": (
        'avg(sum by (model) (increase(model_inference_requests_total{provider!="test",'
        'model!="test-model"}[$window])) > 0)'
    ),
}


@dataclass(frozen=True)
class Rewrite:
    field: str
    series: int
    samples_before: int
    samples_after: int
    value_before: float | None
    value_after: float | None

    @property
    def same_number(self) -> bool:
        return self.value_before == self.value_after


def try_rewrites(url: str, series: int, window: str, at: float) -> list[Rewrite]:
    catalog = load_catalog(None)
    tried = []
    for key, template in REWRITES.items():
        domain, name = key.split(".")
        before = catalog.domains[domain].fields[name].render(window)
        after = template.replace("$window", window)
        touched = samples_touched(url, [before, after], at)
        tried.append(
            Rewrite(
                key,
                series,
                touched[before],
                touched[after],
                value_of(url, before, at),
                value_of(url, after, at),
            )
        )
    return tried


def rewrites_table(tried: Sequence[Rewrite]) -> str:
    rows = [
        [
            r.field,
            f"{r.series:,}",
            f"{r.samples_before:,} → {r.samples_after:,}",
            f"{r.value_before!r} → {r.value_after!r}",
            "no" if r.same_number else "**yes**: rejected",
        ]
        for r in tried
    ]
    return table(["field", "series", "samples", "value", "number changed"], rows)
