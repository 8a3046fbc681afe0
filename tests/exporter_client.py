"""Helpers for tests that talk to a running exporter app, or run its command."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from exporter.app import SERVICES
from exporter.catalog import Catalog, Kind
from tests.fake_prometheus import FakePrometheus, scalar_vector


def service(client: Any) -> Any:
    return client.server.app[SERVICES]


async def started(start_exporter: Any, url: str, **overrides: Any) -> Any:
    """An exporter whose first background refresh has finished."""
    client = await start_exporter(url, **overrides)
    for _ in range(500):
        if service(client).refresher.current is not None:
            return client
        await asyncio.sleep(0.01)
    raise AssertionError("the first refresh did not finish within 5 s")


async def body(response: Any) -> Any:
    return json.loads(await response.text())


async def wait_for_document(
    client: Any, condition: Callable[[dict[str, Any]], bool], within: float
) -> dict[str, Any]:
    """The first /summary that meets `condition`, asked every 50 ms for `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        response = await client.get("/summary")
        document: dict[str, Any] = await body(response)
        if response.status == 200 and condition(document):
            return document
        if time.monotonic() > deadline:
            raise AssertionError(f"no such document within {within}s; last: {document}")
        await asyncio.sleep(0.05)


def answer_every_field(fake: FakePrometheus, catalog: Catalog, value: str = "2") -> None:
    """Every field `value`; a table one row, entity "e", whose numeric cells are `value` and
    whose label cells are "v"."""
    answer_sources(fake, catalog)
    for _, _, spec in catalog.fields():
        if spec.kind is not Kind.TABLE:
            fake.answers[spec.render("5m")] = scalar_vector(value)
            continue
        row = {spec.label or "": "e"}
        fake.answers[spec.render("5m")] = scalar_vector(value, row)
        for column in spec.columns.values():
            labels = row | ({column.label: "v"} if column.label else {})
            fake.answers[column.render("5m")] = scalar_vector(value, labels)


def answer_sources(
    fake: FakePrometheus,
    catalog: Catalog,
    series: dict[str, int] | None = None,
    lookback: str | None = None,
) -> None:
    """Answers which metrics the catalog reads exist: `series` per name, by default one
    series of every one of them."""
    counts = series if series is not None else dict.fromkeys(catalog.sources(), 1)
    fake.answers[catalog.existence_query(catalog.sources(), lookback)] = [
        {"metric": {"__name__": name}, "value": [1767225600, str(count)]}
        for name, count in counts.items()
    ]


def answer_fields(
    fake: FakePrometheus, catalog: Catalog, values: dict[str, str], window: str = "5m"
) -> None:
    """Answers the fields given as {"domain.field": value}; every other query is empty, and
    every metric the catalog reads exists."""
    answer_sources(fake, catalog)
    for key, value in values.items():
        spec = catalog.field(key)
        assert spec is not None, key
        fake.answers[spec.render(window)] = scalar_vector(value)


# A gateway that is up: both its targets, and a sample one second old.
LIVE_GATEWAY = {
    "gateway.targets_up": "2",
    "gateway.targets_total": "2",
    "gateway.newest_sample_age_ms": "1000",
}


def answer_degraded(fake: FakePrometheus, catalog: Catalog) -> None:
    """A live gateway with a 10 % error rate over 200 requests and four providers all
    available."""
    answer_fields(
        fake,
        catalog,
        LIVE_GATEWAY
        | {
            "http.error_rate": "10",
            "http.total_requests": "200",
            "providers.total_providers": "4",
        },
    )


def distinct_queries(catalog: Catalog, window: str) -> set[str]:
    """The PromQL one evaluation asks: every field's, its lower-bound query and a table's
    columns, every query check's and what each check's detail names, and which of the metrics
    they read exist."""
    fields = {spec.render(window) for _, _, spec in catalog.fields()}
    bounds = {spec.render_lower_bound(window) for _, _, spec in catalog.fields()} - {None}
    columns = {
        column.render(window) for _, _, spec in catalog.fields() for column in spec.columns.values()
    }
    checks = {c.answer_spec().render(window) for c in catalog.checks.values() if c.query}
    names = {c.names.render(window) for c in catalog.checks.values() if c.names}
    existence = {catalog.existence_query(catalog.sources())}
    return fields | {q for q in bounds if q} | columns | checks | names | existence


def run_command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m exporter ARGS` as a user runs it, without this environment's EXPORTER_*."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


async def command(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`python -m exporter ARGS` without blocking the loop a test's servers run on, without
    this environment's EXPORTER_*, APP_ENV, TESTING and NO_COLOR: (status, stdout, stderr)."""
    environment = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EXPORTER_") and k not in ("APP_ENV", "TESTING", "NO_COLOR")
    } | (env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", *args,
        env=environment, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()
