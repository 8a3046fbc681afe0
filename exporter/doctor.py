"""`summary-exporter doctor`: which fields of the catalog the upstream can fill, and why not.

With the settings of `serve` (upstream, credentials, EXPORTER_SELECTOR, EXPORTER_CATALOG), it
asks two bounded questions at one instant: how many series (under the selector) each metric
the catalog reads has within a lookback, and, for the metrics that have none, which metrics
with similar names do. Exit status: 0 when every field can have a value, 1 when some cannot,
2 on a usage error, 3 when the upstream cannot be reached. Unless EXPORTER_RECORDED_RULES is
off, it also reads the catalog's recording rules as the refresh does and says which have no
fresh answer; with `on`, such a rule counts as a field that cannot have a value.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import re
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from exporter.catalog import Catalog, load_catalog
from exporter.check import instant_argument
from exporter.durations import duration_argument
from exporter.errors import CatalogError, SettingsError, UpstreamError
from exporter.prometheus import ReadBudget, Upstream
from exporter.recorded import RecordedRead, recorded_rules
from exporter.settings import Settings, load_settings
from exporter.snapshot import format_instant
from exporter.upstream import session_for, upstream_for

EXIT_OK = 0
EXIT_MISSING = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
SIMILAR = 3
_FAMILY_SUFFIX = re.compile(r"_(?:bucket|sum|count)$")
# Parts of a metric name that say what kind of series it is, not what it is about.
_GENERIC = frozenset(
    {"total", "seconds", "bucket", "sum", "count", "bytes", "ratio", "created", "info", "current"}
)


@dataclass(frozen=True)
class Diagnosis:
    """Series per metric the catalog reads, and similar existing names for the missing ones."""

    catalog: Catalog
    upstream: str
    lookback: str
    at: float
    series: dict[str, int]
    similar: dict[str, list[str]]
    recorded: RecordedRead | None = None

    def fillable(self, sources: tuple[str, ...]) -> bool:
        """A field can have a value when one of the metrics it reads has series (or it reads
        none): the same rule that lets a count be 0 rather than null."""
        return not sources or any(self.series.get(name) for name in sources)

    def unfillable(self) -> list[str]:
        return [
            f"{domain}.{name}"
            for domain, name, spec in self.catalog.fields()
            if not self.fillable(spec.sources())
        ]

    @property
    def missing_rules(self) -> list[str]:
        """The recording rules without a fresh answer, by what uses them first."""
        if self.recorded is None:
            return []
        return [f"{rule.record} ({rule.used_by})" for rule in self.recorded.missing]

    @property
    def failed(self) -> bool:
        """Some field cannot have a value: no metric to read, or (EXPORTER_RECORDED_RULES=on)
        no fresh recorded answer."""
        rules_required = self.recorded is not None and self.recorded.mode == "on"
        return bool(self.unfillable() or (rules_required and self.missing_rules))

    def document(self) -> dict[str, Any]:
        return {
            "upstream": self.upstream,
            "selector": self.catalog.selector,
            "lookback": self.lookback,
            "time": format_instant(self.at),
            "fields": {
                f"{domain}.{name}": {
                    "metrics": {source: self.series.get(source, 0) for source in spec.sources()},
                    "can_have_value": self.fillable(spec.sources()),
                }
                for domain, name, spec in self.catalog.fields()
            },
            "missing": self.similar,
            "cannot_have_value": self.unfillable(),
            "recorded_rules": None if self.recorded is None else self._recorded_document(),
        }

    def _recorded_document(self) -> dict[str, Any]:
        read = self.recorded
        assert read is not None
        return {
            "mode": read.mode,
            "timestamp": None if read.instant is None else format_instant(read.instant),
            "rules": len(read.rules.rules),
            "missing": self.missing_rules,
            "error": None if read.error is None else str(read.error),
        }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--time",
        type=instant_argument,
        help="a past instant to look back from (RFC 3339 or unix seconds)",
    )
    parser.add_argument(
        "--lookback",
        type=duration_argument,
        help="how far back a metric must have series (default: the catalog's lookback, 1h)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(arguments: argparse.Namespace) -> int:
    """The command: prints the diagnosis and returns its exit status."""
    try:
        settings = load_settings()
        catalog = load_catalog(settings.catalog, settings.selector)
    except (SettingsError, CatalogError) as error:
        print(f"summary-exporter doctor: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        diagnosis = asyncio.run(diagnose(settings, catalog, arguments.lookback, arguments.time))
    except UpstreamError as error:
        print(f"summary-exporter doctor: cannot ask the upstream: {error}", file=sys.stderr)
        return EXIT_UNREACHABLE
    if arguments.json:
        print(json.dumps(diagnosis.document(), indent=2))
    else:
        print(render(diagnosis), end="")
    return EXIT_MISSING if diagnosis.failed else EXIT_OK


async def diagnose(
    settings: Settings, catalog: Catalog, lookback: str | None, at: float | None
) -> Diagnosis:
    async with session_for(settings) as session:
        client = upstream_for(settings, session)
        instant = round(time.time() if at is None else at, 3)
        budget = ReadBudget(settings.max_refresh_bytes)
        lookback = lookback or catalog.lookback_canonical
        diagnosis = await diagnose_with(client, catalog, lookback, instant, budget)
        reader = recorded_rules(settings, client)
        if reader is None:
            return diagnosis
        read, _ = await reader.read(catalog, settings.window, instant, budget)
        return replace(diagnosis, recorded=read)


async def diagnose_with(
    client: Upstream, catalog: Catalog, lookback: str, at: float, budget: ReadBudget
) -> Diagnosis:
    """Its answers take at most `budget` together, as a refresh's do."""
    names = catalog.sources()
    series = await _series(client, catalog, names, lookback, at, budget)
    missing = [name for name in names if not series.get(name)]
    similar: dict[str, list[str]] = {}
    if missing:
        # Names sharing a word with a missing one: one bounded question for all of them.
        words = sorted({word for name in missing for word in _words(name)})
        found = await _series(client, catalog, (), lookback, at, budget, words) if words else {}
        existing = [name for name in found if not name.endswith("_created")]
        similar = {name: _ranked(name, existing) for name in missing}
    return Diagnosis(catalog, client.display_url, lookback, at, series, similar)


async def _series(
    client: Upstream,
    catalog: Catalog,
    names: tuple[str, ...],
    lookback: str,
    at: float,
    budget: ReadBudget,
    words: list[str] | None = None,
) -> dict[str, int]:
    """Series per metric name: of `names`, or of every name containing one of `words`."""
    if words is None:
        promql = catalog.existence_query(names, lookback)
    else:
        pattern = ".*(?:" + "|".join(re.escape(word) for word in words) + ").*"
        promql = catalog.series_query(pattern, lookback)
    result = await client.query(promql, at, budget)
    return {s.labels.get("__name__", ""): int(s.value) for s in result.samples if s.value > 0}


def _words(name: str) -> set[str]:
    return {word for word in name.split("_") if len(word) > 2 and word not in _GENERIC}


def _ranked(missing: str, existing: list[str]) -> list[str]:
    """The existing names most like `missing`: most shared words, then closest spelling; one
    name per family (a histogram's _bucket, _sum and _count are one suggestion)."""
    words = _words(missing)

    def likeness(name: str) -> tuple[int, float, str]:
        shared = len(words & _words(name))
        return -shared, -difflib.SequenceMatcher(None, missing, name).ratio(), name

    candidates = sorted((name for name in existing if words & _words(name)), key=likeness)
    by_family = {_FAMILY_SUFFIX.sub("", name): name for name in reversed(candidates)}
    return sorted(by_family.values(), key=likeness)[:SIMILAR]


def render(diagnosis: Diagnosis) -> str:
    """The diagnosis as a table for a terminal."""
    catalog = diagnosis.catalog
    where = f"selector {catalog.selector}" if catalog.selector else "no selector"
    lines = [
        f"Metrics the catalog reads, in {diagnosis.upstream} ({where}), with series in the"
        f" {diagnosis.lookback} before {format_instant(diagnosis.at)}:",
        "",
    ]
    rows = [("FIELD", "METRIC", "SERIES", "")]
    for domain, name, spec in catalog.fields():
        label = f"{domain}.{name}"
        for source in spec.sources():
            count = diagnosis.series.get(source, 0)
            similar = diagnosis.similar.get(source) or []
            note = ""
            if not count:
                note = f"similar: {', '.join(similar)}" if similar else "no similar metric"
            rows.append((label, source, str(count) if count else "none", note))
            label = ""
        if not diagnosis.fillable(spec.sources()):
            rows.append(("", "", "", f"-> {domain}.{name} cannot have a value"))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for field, metric, shown, note in rows:
        line = f"  {field:<{widths[0]}}  {metric:<{widths[1]}}  {shown:>{widths[2]}}  {note}"
        lines.append(line.rstrip())
    unfillable = diagnosis.unfillable()
    total = len(catalog.fields())
    lines.append("")
    if unfillable:
        lines.append(
            f"{total - len(unfillable)} of {total} fields can have a value;"
            f" {len(unfillable)} cannot: {', '.join(unfillable)}"
        )
    else:
        lines.append(f"All {total} fields can have a value.")
    if (read := diagnosis.recorded) is not None:
        lines.append(_render_recorded(read, diagnosis.missing_rules))
    return "\n".join(lines) + "\n"


def _render_recorded(read: RecordedRead, missing: list[str]) -> str:
    rules = len(read.rules.rules)
    where = f"Recording rules (window {read.rules.window}, EXPORTER_RECORDED_RULES={read.mode})"
    if read.error is not None:
        return f"{where}: cannot read them: {read.error}"
    if not missing:
        assert read.instant is not None  # every rule answered in one evaluation
        return f"{where}: all {rules} answered at {format_instant(read.instant)}."
    consequence = (
        "their fields cannot have a value" if read.mode == "on" else "PromQL answers instead"
    )
    if read.instant is None:
        return (
            f"{where}: no rule answered within {read.max_age:g} s"
            f" (`summary-exporter rules` prints them), {consequence}"
        )
    return (
        f"{where}: {len(missing)} of {rules} without an answer within {read.max_age:g} s"
        f" (`summary-exporter rules` prints them), {consequence}: {', '.join(missing)}"
    )
