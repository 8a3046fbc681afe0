"""`summary-exporter check`: the gateway's state in a terminal, without writing PromQL.

It asks a running exporter (`--url`: its /summary and /health) or Prometheus directly
(`--prometheus`: the catalog evaluated here, at one instant, and the checks judged here), and
prints the five domains and the checks. Exit status: 0 ok, 1 degraded, 2 critical, 3 when
no answer could be had.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

import aiohttp

from exporter import strict_json
from exporter.app import said_with
from exporter.catalog import Unit, load_catalog
from exporter.environment import about, read_environment
from exporter.errors import CatalogError, InvalidRequest, SettingsError
from exporter.health import assess, format_age, format_value
from exporter.matchers import selector_argument
from exporter.parameters import parse_time, parse_window
from exporter.prometheus import PrometheusClient
from exporter.refresher import Evaluator
from exporter.settings import (
    Settings,
    TableLimits,
    default,
    load_settings,
    redact_url,
    url_problem,
)
from exporter.snapshot import explain

EXIT_CODES = {"ok": 0, "degraded": 1, "critical": 2}
EXIT_UNREACHABLE = 3
_COLOURS = {"ok": "32", "degraded": "33", "critical": "31", "unknown": "2"}


class Unreachable(Exception):
    """No state could be had: the exporter or Prometheus did not answer, or refused."""


@dataclass(frozen=True)
class Report:
    source: str
    summary: dict[str, Any]
    health: dict[str, Any]

    @property
    def status(self) -> str:
        return str(self.health["status"])

    def document(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "source": self.source,
            "summary": self.summary,
            "health": self.health,
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--url",
        type=_url,
        help="a running exporter (default: http://127.0.0.1 on $EXPORTER_PORT, or on"
        f" {default('port')})",
    )
    source.add_argument(
        "--prometheus",
        metavar="URL",
        type=_url,
        help="ask this Prometheus directly: the catalog is evaluated and judged here, with"
        " APP_ENV and TESTING from this shell",
    )
    parser.add_argument(
        "--time",
        type=instant_argument,
        help="a past instant to evaluate at (RFC 3339 or unix seconds)",
    )
    parser.add_argument(
        "--window",
        type=_window,
        help="summary window (default: the exporter's; with --prometheus, $EXPORTER_WINDOW or"
        f" {default('window')})",
    )
    parser.add_argument(
        "--catalog",
        type=Path,
        help="with --prometheus: catalog file (default: $EXPORTER_CATALOG or the built-in one)",
    )
    parser.add_argument(
        "--selector",
        type=selector_argument,
        help="with --prometheus: label matchers for the gateway's series, e.g."
        ' job="gatewayz-api-production" (default: $EXPORTER_SELECTOR)',
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _url(text: str) -> str:
    problem = url_problem(text.rstrip("/"))
    if problem is not None:
        # Not repeated: a URL may carry a password.
        raise argparse.ArgumentTypeError(f"the URL {problem}")
    return text


def instant_argument(text: str) -> float:
    """An evaluation instant given on the command line (`--time`), for argparse."""
    try:
        return parse_time(text, time.time())
    except InvalidRequest as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _window(text: str) -> str:
    try:
        return parse_window(text)
    except InvalidRequest as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def run(arguments: argparse.Namespace) -> int:
    """The command: prints the report and returns its exit status."""
    try:
        report = asyncio.run(collect(arguments, load_settings()))
    except (Unreachable, CatalogError, SettingsError) as error:
        print(f"summary-exporter check: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if arguments.json:
        print(strict_json.dumps(report.document(), indent=2))
    else:
        print(render(report, colour=colour_enabled(sys.stdout, os.environ)), end="")
    return EXIT_CODES.get(report.status, EXIT_UNREACHABLE)


async def collect(arguments: argparse.Namespace, settings: Settings) -> Report:
    """The report from where the arguments say, with the exporter's settings for the rest."""
    if arguments.prometheus:
        return await from_prometheus(
            arguments.prometheus,
            at=arguments.time,
            window=arguments.window or settings.window,
            catalog_path=arguments.catalog or settings.catalog,
            selector=settings.selector if arguments.selector is None else arguments.selector,
            query_timeout=arguments.timeout,
            max_concurrency=settings.max_concurrent_queries,
            max_response_bytes=settings.max_response_bytes,
            limits=settings.table_limits,
            max_refresh_bytes=settings.max_refresh_bytes,
        )
    # The exporter's own endpoint token, when it has one, from the same variable it reads.
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    return await from_exporter(
        arguments.url or f"http://127.0.0.1:{settings.port}",
        at=arguments.time,
        window=arguments.window,
        query_timeout=arguments.timeout,
        token=token,
    )


async def from_exporter(
    url: str,
    *,
    at: float | None,
    window: str | None,
    query_timeout: float,
    token: str | None = None,
) -> Report:
    """The state as a running exporter serves it: /summary (with PromQL) and /health."""
    base = url.rstrip("/")
    parameters = {
        key: value
        for key, value in (("time", None if at is None else f"{at:.3f}"), ("window", window))
        if value is not None
    }
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    shown = redact_url(base)
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=query_timeout), headers=headers, trust_env=False
    ) as session:
        summary = await _get_json(
            session, f"{base}/summary?{urlencode(parameters | {'explain': '1'})}", shown
        )
        health = await _get_json(session, f"{base}/health?{urlencode(parameters)}", shown)
    return Report(f"{shown} (exporter)", summary, health)


async def _get_json(session: aiohttp.ClientSession, url: str, shown: str) -> dict[str, Any]:
    try:
        async with session.get(url) as response:
            text = await response.text()
            status = response.status
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        raise Unreachable(f"cannot reach the exporter at {shown}: {_cause(error)}") from None
    try:
        document = json.loads(text)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise Unreachable(f"{shown} did not answer with JSON (HTTP {status})")
    if status != 200:
        raise Unreachable(f"{shown} answered HTTP {status}: {document.get('error', '')}")
    return document


def _cause(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ClientConnectorError):
        return error.os_error.strerror or type(error.os_error).__name__
    return type(error).__name__


async def from_prometheus(
    url: str,
    *,
    at: float | None,
    window: str,
    catalog_path: Path | None,
    query_timeout: float,
    max_concurrency: int,
    max_response_bytes: int,
    limits: TableLimits,
    max_refresh_bytes: int,
    selector: str = "",
) -> Report:
    """The catalog evaluated against Prometheus at one instant, and the checks judged here."""
    catalog = load_catalog(catalog_path, selector)
    environment = read_environment()
    instant = round(time.time() if at is None else at, 3)
    shown = redact_url(url.rstrip("/"))
    async with aiohttp.ClientSession(trust_env=False) as session:
        client = PrometheusClient(
            session,
            url.rstrip("/"),
            display_url=shown,
            timeout=query_timeout,
            max_response_bytes=max_response_bytes,
        )
        evaluator = Evaluator(
            catalog,
            client,
            max_concurrency=max_concurrency,
            limits=limits,
            max_bytes=max_refresh_bytes,
        )
        snapshot = await evaluator(instant, window, "on_demand")
    if not snapshot.reached_upstream:
        errors = snapshot.errors()
        cause = str(errors[0][1]) if errors else "no query was answered"
        raise Unreachable(f"cannot reach Prometheus: {cause}")
    # Just evaluated, so there is no snapshot age to judge.
    health = assess(catalog, snapshot, environment, as_of=instant, max_staleness=None)
    summary = snapshot.document(time.time(), about=said_with(snapshot, about(environment)))
    summary["explain"] = explain(catalog, snapshot)
    return Report(f"{shown} (Prometheus)", summary, health.document() | about(environment))


_LIVENESS_WORDS = {
    "critical": "gateway down",
    "degraded": "gateway partly down",
    "unknown": "gateway liveness unknown",
}


def _liveness_note(liveness: Mapping[str, Any] | None, paint: Callable[[str, str], str]) -> str:
    """What the first line adds when the gateway itself is not known to be up."""
    if not liveness:
        return ""
    status = str(liveness.get("status", "unknown"))
    words = _LIVENESS_WORDS.get(status)
    if words is None:
        return ""
    reason = liveness.get("reason")
    return " (" + paint(status, words + (f": {reason}" if reason else "")) + ")"


def colour_enabled(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """Colour only for a person at a terminal, and never when NO_COLOR is set."""
    return stream.isatty() and "NO_COLOR" not in environ


def render(report: Report, *, colour: bool) -> str:
    """The report as a table for a terminal."""

    def paint(status: str, text: str) -> str:
        return f"\x1b[{_COLOURS.get(status, '0')}m{text}\x1b[0m" if colour else text

    summary, health = report.summary, report.health
    environment = summary.get("environment") or {}
    lines = [
        f"Gateway status: {paint(report.status, report.status.upper())}"
        + _liveness_note(health.get("liveness") or summary.get("liveness"), paint),
        f"  from {report.source}; evaluated at {summary.get('timestamp')} over the last"
        f" {summary.get('window')}; APP_ENV={environment.get('app_env') or 'unset'},"
        f" test mode {'on' if environment.get('testing') else 'off'}",
    ]
    if summary.get("stale"):
        age = format_age(float(summary.get("age_seconds") or 0))
        lines.append(paint("degraded", f"  STALE: the newest values are {age} old"))
    explained = summary.get("explain") or {}
    nulls = summary.get("nulls") or {}
    bounds = summary.get("bounds") or {}
    tables: list[tuple[str, list[Any]]] = []
    for domain, fields in (summary.get("metrics") or {}).items():
        lines += ["", domain]
        width = max((len(name) for name in fields), default=0)
        for name, value in fields.items():
            key = f"{domain}.{name}"
            shown = format_value(value, _unit(explained.get(key, {})), bounds.get(key))
            if _is_table(value):
                tables.append((key, value))
                shown += " (below)"
            if value is None and key in nulls:
                shown += paint("unknown", f"  (null: {nulls[key]})")
            lines.append(f"  {name:<{width}}  {shown}")
    checks: dict[str, dict[str, Any]] = health.get("checks") or {}
    rows = [("CHECK", "STATUS", "VALUE", "LIMITS")] + [
        (name, check["status"], check["display"], check["threshold"])
        for name, check in checks.items()
    ]
    widths = [max(len(str(row[column])) for row in rows) for column in range(3)]
    lines += ["", "Checks"]
    for index, (name, status, display, threshold) in enumerate(rows):
        status_cell = f"{status:<{widths[1]}}"
        if index:
            status_cell = paint(status, status_cell)
        lines.append(
            f"  {name:<{widths[0]}}  {status_cell}  {display:<{widths[2]}}  {threshold}".rstrip()
        )
        reason = checks[name].get("reason") if index else None
        if reason:
            lines.append(f"  {'':<{widths[0]}}  -> {reason}")
        detail = checks[name].get("detail") if index and status != "ok" else None
        if detail:
            lines.append(f"  {'':<{widths[0]}}  -> {detail}")
    # Tables listed worst first (the providers) come first: they answer "what is wrong?".
    tables.sort(key=lambda table: explained.get(table[0], {}).get("order") != "ascending")
    for key, rows in tables:
        lines += ["", *_table(key, rows, explained.get(key, {}), summary.get("cuts") or {})]
    return "\n".join(lines) + "\n"


def _unit(explained: Mapping[str, Any]) -> Unit | None:
    unit = explained.get("unit")
    return Unit(unit) if unit in set(Unit) else None


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict)


def _table(
    key: str, rows: list[Mapping[str, Any]], explained: Mapping[str, Any], cuts: Mapping[str, Any]
) -> list[str]:
    """A table field's rows in their order, each cell with its column's unit."""
    columns: Mapping[str, Any] = explained.get("columns") or {}
    names = list(rows[0])
    cells = [[name.upper() for name in names]] + [
        [format_value(row.get(name), _unit(columns.get(name, {}))) for name in names]
        for row in rows
    ]
    widths = [max(len(line[column]) for line in cells) for column in range(len(names))]
    cut = cuts.get(key)
    title = key + (f" (the first {cut['rows']} of {cut['of']} rows, {cut['limit']})" if cut else "")
    return [title] + [
        "  "
        + "  ".join(f"{cell:<{width}}" for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in cells
    ]
