"""The status page: what is wrong first, then who is behind it, then everything else.

One self-contained HTML document: inline CSS, inline SVG sparklines, no script and no
external asset, so it works air-gapped. Every value from a snapshot, the catalog or the
environment is escaped.

Its first screen answers "what is wrong?": the overall status (the gateway's liveness first
when it is not up), the checks that are not ok, worst first, each with who is behind it, then
the tables (those listed worst first, the providers, before the others). The sparklines, every
check, the domains with each field's PromQL and the links follow. Narrow screens get each
table row as a block of its own, so that nothing is wider than its card.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from exporter import __version__
from exporter.catalog import Catalog, ColumnKind, FieldSpec, Kind
from exporter.environment import Environment
from exporter.health import CheckResult, Health, Status, format_age, format_value
from exporter.snapshot import FieldValue, Row, Snapshot, format_instant
from exporter.sparklines import Sparkline

SPARK_WIDTH = 240
SPARK_HEIGHT = 48
_PAD = 3
# Below this width a table's rows are laid out as blocks, one line per cell.
_NARROW_PX = 800

_CSS = f"""
:root {{ --ok: #1a7f37; --degraded: #9a6700; --critical: #cf222e; --unknown: #59636e;
  --muted: #59636e; --line: #d1d9e0; --link: #0969da; }}
* {{ box-sizing: border-box; }}
body {{ margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1f2328; background: #f6f8fa; overflow-wrap: break-word; }}
header, main, footer {{ max-width: 1600px; margin: 0 auto; padding: 0 12px; }}
header {{ padding-top: 14px; }}
h1 {{ font-size: 1.5rem; margin: 0 0 4px; display: flex; flex-wrap: wrap; gap: 4px 12px;
  align-items: center; }}
h2 {{ font-size: 1.15rem; margin: 0 0 6px; }}
section, .banner {{ border-radius: 8px; padding: 12px 16px; margin: 12px 0; }}
section {{ background: #fff; border: 1px solid var(--line); }}
p {{ margin: 0 0 6px; }}
.meta, .help, footer {{ color: var(--muted); }}
footer {{ padding-bottom: 16px; }}
footer nav a {{ margin-right: 14px; white-space: nowrap; }}
a {{ color: var(--link); }}
.badge {{ display: inline-block; color: #fff; border-radius: 6px; padding: 1px 10px;
  font-weight: 600; text-transform: uppercase; font-size: 0.85rem; letter-spacing: 0.03em;
  background: var(--unknown); white-space: nowrap; }}
.badge.ok {{ background: var(--ok); }} .badge.degraded {{ background: var(--degraded); }}
.badge.critical {{ background: var(--critical); }}
.banner {{ font-weight: 600; background: #fff8c5; border: 1px solid #d4a72c; }}
.liveness {{ font-weight: 600; color: var(--unknown); }}
.liveness.critical {{ color: var(--critical); }} .liveness.degraded {{ color: var(--degraded); }}
ul.problems {{ list-style: none; margin: 0 0 6px; padding: 0; display: grid; gap: 8px; }}
.problem {{ border-left: 4px solid var(--degraded); border-radius: 4px; padding: 6px 10px;
  background: #fff8c5; }}
.problem.critical {{ border-color: var(--critical); background: #ffebe9; }}
.problem p {{ margin: 2px 0 0; }}
.problem .what {{ display: flex; flex-wrap: wrap; gap: 2px 12px; align-items: baseline;
  margin: 0; }}
.problem .who {{ font-weight: 600; overflow-wrap: anywhere; }}
.problem .limits {{ margin-left: auto; }}
.problem .limits, .problem .reason {{ color: var(--muted); font-size: 0.9rem; }}
.value, td.num {{ font-variant-numeric: tabular-nums; font-weight: 600; }}
table {{ border-collapse: collapse; width: 100%; }}
table.fixed {{ table-layout: fixed; }}
.tables {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 720px), 1fr));
  gap: 12px; align-items: start; margin: 12px 0; }}
.tables > section {{ margin: 0; }}
th, td {{ text-align: left; vertical-align: top; padding: 5px 8px;
  border-top: 1px solid #e5e9ed; }}
thead th {{ border-top: none; color: var(--muted); font-weight: 600; }}
td.num {{ text-align: right; white-space: nowrap; }}
thead th.num {{ text-align: right; }}
.entity {{ overflow-wrap: break-word; }}
.entity > span {{ display: inline-block; max-width: 22em; }}
tr.critical > th.entity {{ box-shadow: inset 4px 0 var(--critical); }}
tr.degraded > th.entity {{ box-shadow: inset 4px 0 var(--degraded); }}
.pill {{ display: inline-block; border: 1px solid var(--line); border-radius: 10px;
  padding: 0 8px; font-size: 0.85rem; font-weight: 600; white-space: nowrap; }}
.pill.ok {{ color: var(--ok); border-color: var(--ok); }}
.pill.degraded {{ color: var(--degraded); border-color: var(--degraded); background: #fff8c5; }}
.pill.critical {{ color: #fff; border-color: var(--critical); background: var(--critical); }}
.reason {{ color: var(--muted); font-weight: normal; overflow-wrap: anywhere; }}
.rows {{ overflow-wrap: anywhere; }}
code {{ font: 0.85rem/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap;
  overflow-wrap: anywhere; }}
details summary {{ cursor: pointer; color: var(--link); white-space: nowrap; }}
.sparks {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr));
  gap: 12px; }}
figure {{ margin: 0; min-width: 0; }}
figcaption {{ font-size: 0.9rem; }}
svg.spark {{ display: block; width: 100%; height: auto; background: #f6f8fa;
  border-radius: 4px; }}
svg.spark polyline {{ fill: none; stroke: var(--link); stroke-width: 1.5; }}
svg.spark circle {{ fill: var(--link); }}
svg.spark line {{ stroke: #afb8c1; stroke-width: 1; stroke-dasharray: 2 3; }}
.missing {{ color: var(--muted); font-style: italic; margin: 4px 0; }}
@media (max-width: {_NARROW_PX}px) {{
  header, main, footer {{ padding: 0 8px; }}
  section, .banner {{ padding: 10px 12px; }}
  table.stack, table.stack tbody, table.stack tr, table.stack th, table.stack td {{
    display: block; width: auto; }}
  table.stack thead, table.stack colgroup {{ display: none; }}
  table.stack tr {{ border-top: 1px solid var(--line); padding: 6px 0; }}
  table.stack tbody tr:first-child {{ border-top: none; }}
  table.stack th, table.stack td {{ border: none; padding: 1px 0; text-align: left; }}
  table.stack td[data-label] {{ display: flex; gap: 12px; justify-content: space-between; }}
  table.stack td[data-label]::before {{ content: attr(data-label); color: var(--muted);
    font-weight: normal; flex: none; }}
  table.stack td[data-label] > div {{ min-width: 0; text-align: right; }}
  tr.critical > th.entity, tr.degraded > th.entity {{ padding-left: 10px; }}
}}
"""


@dataclass(frozen=True)
class Page:
    """Everything one rendering shows."""

    catalog: Catalog
    snapshot: Snapshot | None
    health: Health
    sparklines: tuple[Sparkline, ...]
    environment: Environment
    now: float
    # Seconds between reloads of a live page; None for a page pinned to a past instant.
    refresh_seconds: float | None
    # Where the PromQL links open: the (first) upstream's URL, without credentials.
    prometheus_url: str


# The page's first line when the gateway itself is not known to be up.
_LIVENESS_TITLES = {
    Status.CRITICAL: ("Gateway down", "The gateway is down"),
    Status.DEGRADED: ("Gateway partly down", "Part of the gateway is down"),
    Status.UNKNOWN: ("Gateway status", "Whether the gateway is up is unknown"),
}
# Values of a table's label cells that say how its row is doing (a provider's status, its
# circuit breaker); the row is marked with the worst of them.
_TONES = {
    "unavailable": Status.CRITICAL,
    "open": Status.CRITICAL,
    "degraded": Status.DEGRADED,
    "half_open": Status.DEGRADED,
    "healthy": Status.OK,
}


def render_page(page: Page) -> str:
    title = page.health.status.value.upper()
    live = page.health.liveness
    if live.status in (Status.CRITICAL, Status.DEGRADED):
        title += f" · {_LIVENESS_TITLES[live.status][0].lower()}"
    refresh = (
        ""
        if page.refresh_seconds is None
        else f'<meta http-equiv="refresh" content="{max(1, round(page.refresh_seconds))}">\n'
    )
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{refresh}<title>{_e(title)} · gateway status</title>\n"
        f"<style>{_CSS}</style>\n</head>\n<body>\n"
        f"{_header(page)}<main>\n{_banner(page)}{_problems(page)}{_tables(page)}"
        f"{_sparklines(page)}{_checks(page)}{_domains(page)}</main>\n"
        f"{_footer(page)}</body>\n</html>\n"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _entity(name: str) -> str:
    """A label value that may be long (`accounts/fireworks/models/...`): it wraps after a
    slash first, anywhere if it must, and its title holds it whole."""
    return f'<span title="{_e(name)}">{_e(name).replace("/", "/<wbr>")}</span>'


def _badge(status: Status) -> str:
    return f'<span class="badge {status.value}">{_e(status.value)}</span>'


def _section(anchor: str, heading: str, body: str) -> str:
    return (
        f'<section aria-labelledby="{_e(anchor)}">\n<h2 id="{_e(anchor)}">{heading}</h2>\n'
        f"{body}</section>\n"
    )


def _when(at: float) -> str:
    shown = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f'<time datetime="{_e(format_instant(at))}">{_e(shown)}</time>'


def _query(page: Page, **extra: str) -> str:
    """The page's own instant and window, for links to the JSON of the same snapshot."""
    snapshot = page.snapshot
    parameters = dict(extra)
    if snapshot is not None and snapshot.source == "on_demand":
        parameters |= {"time": format_instant(snapshot.instant), "window": snapshot.window}
    return "?" + urlencode(parameters) if parameters else ""


def _header(page: Page) -> str:
    snapshot = page.snapshot
    if snapshot is None:
        meta = "No snapshot yet: the first refresh has not finished."
    else:
        meta = (
            f"Evaluated at {_when(snapshot.data_instant)} over the last {_e(snapshot.window)}"
            f" ({_e(snapshot.source.replace('_', ' '))}) from {_e(snapshot.upstream)}."
        )
    live = page.health.liveness
    title, sentence = _LIVENESS_TITLES.get(live.status, ("Gateway status", ""))
    said = ""
    if sentence and page.snapshot is not None:
        said = (
            f'<p class="liveness {_e(live.status.value)}" role="alert">'
            f"{_e(sentence)}: {_e(live.reason or '')}</p>\n"
        )
    return (
        f"<header>\n<h1>{_e(title)} {_badge(page.health.status)}</h1>\n{said}"
        f'<p class="meta">{meta}</p>\n</header>\n'
    )


def _banner(page: Page) -> str:
    snapshot = page.snapshot
    if snapshot is None:
        text = "Waiting for the first refresh; this page reloads by itself."
    elif not snapshot.stale:
        return ""
    else:
        kept = [field for field in snapshot.fields.values() if field.stale]
        oldest = min((field.evaluated_at for field in kept), default=snapshot.data_instant)
        age = format_age(page.now - oldest)
        errors = snapshot.errors()
        cause = f": {errors[0][1]}" if errors else ""
        if snapshot.reached_upstream:
            text = f"Stale: {len(kept)} fields keep older values, up to {age} old{cause}"
        else:
            text = f"Stale: these values are {age} old; the upstream did not answer{cause}"
    return f'<div class="banner" role="alert">{_e(text)}</div>\n'


def _problems(page: Page) -> str:
    """The checks that are not ok, worst first, each with who is behind it."""
    if page.snapshot is None:
        return ""
    checks = page.health.worst_first()
    failing = [check for check in checks if check.failing]
    unknown = [check for check in checks if check.status is Status.UNKNOWN]
    if failing:
        heading = "What is wrong"
        items = "".join(_problem(check) for check in failing)
        body = f'<ul class="problems">\n{items}</ul>\n'
    else:
        heading = "Nothing is wrong"
        body = f"<p>The {len(checks) - len(unknown)} checks that have a value are ok.</p>\n"
    if unknown:
        names = ", ".join(check.name for check in unknown)
        body += (
            f'<p class="help">No value, so unknown: {_e(names)} (<a href="#checks">why</a>).</p>\n'
        )
    return _section("wrong", heading, body)


def _problem(check: CheckResult) -> str:
    """One line: how bad, who is behind it, the limits; and why, when there is a reason."""
    parts = [
        _badge(check.status),
        f'<strong title="{_e(check.help)}">{_e(check.name)}</strong>',
        f'<span class="value">{_e(check.display)}</span>',
        *([f'<span class="who">{_e(check.detail)}</span>'] if check.detail else []),
        f'<span class="limits">{_e(check.threshold)}</span>',
    ]
    reason = f'<p class="reason">{_e(check.reason)}</p>' if check.reason else ""
    return (
        f'<li class="problem {check.status.value}"><p class="what">{" ".join(parts)}</p>'
        f"{reason}</li>\n"
    )


def _tables(page: Page) -> str:
    snapshot = page.snapshot
    if snapshot is None:
        return ""
    tables = [(d, n, spec) for d, n, spec in page.catalog.fields() if spec.kind is Kind.TABLE]
    # Tables listed worst first (the providers) come first: they say who is behind a problem.
    tables.sort(key=lambda table: table[2].order != "ascending")
    shown = []
    for domain, name, spec in tables:
        field = snapshot.fields.get((domain, name))
        if field is not None:
            shown.append(_table(page, f"{domain}.{name}", spec, field))
    return f'<div class="tables">\n{"".join(shown)}</div>\n' if shown else ""


def _table(page: Page, key: str, spec: FieldSpec, field: FieldValue) -> str:
    notes = [spec.help]
    if field.cut is not None:
        cut = field.cut
        notes.append(f"The first {cut.rows} of {cut.of} rows ({cut.limit}).")
    if field.stale:
        notes.append(f"Stale, {format_age(page.now - field.evaluated_at)} old.")
    body = f'<p class="help">{_e(" ".join(notes))}</p>\n'
    rows = (
        [row for row in field.value if isinstance(row, dict)]
        if isinstance(field.value, list)
        else []
    )
    if field.value is None:
        body += f'<p class="missing">No rows: {_e(field.reason or "no value")}</p>\n'
    elif not rows:
        body += '<p class="missing">No rows in the window.</p>\n'
    else:
        body += _rows(spec, rows, field.cells)
    return _section(f"table-{key}", _e(key), body)


def _rows(spec: FieldSpec, rows: list[Row], nulls: tuple[tuple[str, str, str], ...]) -> str:
    """A table's rows in their order; a null cell shows why (`nulls`) on hover."""
    assert spec.label is not None  # the catalog guarantees the entity label of a table
    entity = spec.label
    why = {(name, column): reason for name, column, reason in nulls}
    head = f'<th scope="col">{_e(entity)}</th>' + "".join(
        f'<th scope="col" class="{"num" if column.numeric else "label"}"'
        f' title="{_e(column.help)}">{_e(_heading(name))}</th>'
        for name, column in spec.columns.items()
    )
    lines = []
    for row in rows:
        name = str(row.get(entity))
        cells, tones = [], []
        for column_name, column in spec.columns.items():
            cell = row.get(column_name)
            if cell is None:
                reason = why.get((name, column_name), "no value")
                content = f'<span title="{_e(reason)}">—</span>'
            elif column.kind is ColumnKind.LABEL:
                tone = _TONES.get(str(cell))
                tones += [tone] if tone else []
                content = f'<span class="pill {tone.value if tone else ""}">{_e(cell)}</span>'
            else:
                # A column named for its unit (tokens, avg_latency_ms) says it once, above.
                said = column.unit is not None and column_name.endswith(column.unit.value)
                content = _e(format_value(cell, None if said else column.unit))
            kind = "num" if column.numeric else "label"
            cells.append(
                f'<td class="{kind}" data-label="{_e(_heading(column_name))}">'
                f"<div>{content}</div></td>"
            )
        worst = next((s.value for s in (Status.CRITICAL, Status.DEGRADED) if s in tones), "")
        lines.append(
            f'<tr class="{worst}"><th scope="row" class="entity">{_entity(name)}</th>'
            f"{''.join(cells)}</tr>\n"
        )
    return (
        f'<table class="stack">\n<thead><tr>{head}</tr></thead>\n'
        f"<tbody>\n{''.join(lines)}</tbody>\n</table>\n"
    )


def _heading(name: str) -> str:
    return name.replace("_", " ")


def _checks(page: Page) -> str:
    rows = "".join(_check_row(check) for check in page.health.worst_first())
    body = (
        '<p class="help">Worst first. Limits come from the catalog; a check without a value'
        " is unknown and does not change the overall status.</p>\n"
        f'<table class="stack fixed">\n{_columns(24, 24, 22, 30)}'
        '<thead><tr><th scope="col">Check</th><th scope="col">Value</th>'
        '<th scope="col">Limits</th><th scope="col">Details</th>'
        f"</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
    )
    return _section("checks", "All checks", body)


def _columns(*percents: int) -> str:
    """Column widths of a table whose cells wrap rather than widen it."""
    widths = "".join(f'<col style="width: {percent}%">' for percent in percents)
    return f"<colgroup>{widths}</colgroup>\n"


def _check_row(check: CheckResult) -> str:
    notes = [note for note in (check.reason, check.detail) if note]
    reason = "".join(f'<br><span class="reason">{_e(note)}</span>' for note in notes)
    details = f"{_e(check.help)}{_promql_details(check.promql)}"
    return (
        f'<tr><th scope="row" class="entity">{_badge(check.status)} {_e(check.name)}</th>'
        f'<td class="value" data-label="value"><div>{_e(check.display)}{reason}</div></td>'
        f'<td data-label="limits"><div>{_e(check.threshold)}</div></td>'
        f"<td><div>{details}</div></td></tr>\n"
    )


def _promql_details(queries: Iterable[str], link: str | None = None) -> str:
    codes = "".join(f"<code>{_e(query)}</code><br>" for query in queries)
    if not codes:
        return ""
    opened = f'<a href="{_e(link)}">Open in Prometheus</a>' if link else ""
    return f"<details><summary>PromQL</summary>{codes}{opened}</details>"


def _prometheus_link(page: Page, promql: str, at: float, **panel: str) -> str:
    moment = datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
    parameters = {"g0.expr": promql, "g0.moment_input": moment, "g0.end_input": moment}
    parameters |= {f"g0.{key}": value for key, value in panel.items()}
    return f"{page.prometheus_url}/graph?{urlencode(parameters)}"


def _sparklines(page: Page) -> str:
    if not page.sparklines:
        return ""
    if all(line.skipped for line in page.sparklines):
        # One reason for all of them: say it once.
        body = f'<p class="missing">Sparklines {_e(page.sparklines[0].reason)}</p>\n'
    else:
        figures = "".join(_figure(page, line) for line in page.sparklines)
        body = f'<div class="sparks">\n{figures}</div>\n'
    return f'<section aria-labelledby="trends">\n<h2 id="trends">Last hour</h2>\n{body}</section>\n'


def _figure(page: Page, line: Sparkline) -> str:
    label = f"{line.domain}.{line.name}"
    link = _prometheus_link(page, line.promql, line.end, tab="0", range_input="1h")
    if not line.points:
        body = f'<p class="missing">No sparkline: {_e(line.reason or "no data")}</p>'
        caption = f"<strong>{_e(label)}</strong>"
    else:
        values = [value for _, value in line.points]
        caption = (
            f"<strong>{_e(label)}</strong> latest {_e(format_value(values[-1], line.unit))}"
            f" · min {_e(format_value(min(values), line.unit))}"
            f" · max {_e(format_value(max(values), line.unit))}"
        )
        body = _svg(line, f"{label} over the hour before {format_instant(line.end)}")
    return (
        f"<figure>\n<figcaption>{caption}</figcaption>\n{body}\n"
        f"{_promql_details([line.promql], link)}\n</figure>\n"
    )


def _svg(line: Sparkline, title: str) -> str:
    """The points on a scale from zero (or below, for negative values) to the highest, with a
    dotted line at zero: a zero is drawn at zero, and a step without a value is a gap."""
    values = [value for _, value in line.points]
    low = min(0.0, *values)
    high = max(values)
    span = (high - low) or 1.0
    width, height = SPARK_WIDTH - 2 * _PAD, SPARK_HEIGHT - 2 * _PAD

    def x(at: float) -> float:
        return _PAD + (at - line.start) / (line.end - line.start) * width

    def y(value: float) -> float:
        return _PAD + height - (value - low) / span * height

    segments: list[list[tuple[float, float]]] = []
    for at, value in line.points:
        if not segments or at - segments[-1][-1][0] > 1.5 * line.step:
            segments.append([])
        segments[-1].append((at, value))
    shapes = [f'<line x1="{_PAD}" y1="{y(0):.1f}" x2="{SPARK_WIDTH - _PAD}" y2="{y(0):.1f}"/>']
    for segment in segments:
        if len(segment) == 1:
            at, value = segment[0]
            shapes.append(f'<circle cx="{x(at):.1f}" cy="{y(value):.1f}" r="1.8"/>')
        else:
            points = " ".join(f"{x(at):.1f},{y(value):.1f}" for at, value in segment)
            shapes.append(f'<polyline points="{points}"/>')
    return (
        f'<svg class="spark" role="img" aria-label="{_e(title)}" width="{SPARK_WIDTH}"'
        f' height="{SPARK_HEIGHT}" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}"'
        f' xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>{"".join(shapes)}</svg>'
    )


def _domains(page: Page) -> str:
    snapshot = page.snapshot
    if snapshot is None:
        return ""
    sections = []
    for domain, domain_spec in page.catalog.domains.items():
        rows = []
        for name, spec in domain_spec.fields.items():
            field = snapshot.fields.get((domain, name))
            if field is None:
                continue
            value = _e(format_value(field.value, spec.unit, field.bound))
            if spec.kind is Kind.TABLE and isinstance(field.value, list) and field.value:
                # The rows' entities in their order; the table itself is above.
                key = spec.label or ""
                entities = [str(row.get(key)) for row in field.value if isinstance(row, dict)]
                value = f'<span class="rows">{_e(", ".join(entities))}</span>'
            if field.value is None and field.reason:
                value += f'<br><span class="reason">null: {_e(field.reason)}</span>'
            if field.value is not None and field.bound and spec.lower_bound is not None:
                value += f'<br><span class="reason">at least: {_e(spec.lower_bound.reason)}</span>'
            if field.stale:
                age = format_age(page.now - field.evaluated_at)
                value += f'<br><span class="reason">stale, {_e(age)} old</span>'
            link = _prometheus_link(page, spec.render(snapshot.window), field.evaluated_at, tab="1")
            query = _promql_details([spec.render(snapshot.window)], link)
            rows.append(
                f'<tr><th scope="row" class="entity">{_e(name)}</th>'
                f'<td class="value" data-label="value"><div>{value}</div></td>'
                f'<td><div><span class="help">{_e(spec.help)}</span>{query}</div></td></tr>\n'
            )
        body = (
            f'<p class="help">{_e(domain_spec.help)}</p>\n'
            f'<table class="stack fixed">\n{_columns(22, 30, 48)}'
            '<thead><tr><th scope="col">Field</th><th scope="col">Value</th>'
            '<th scope="col">Meaning and PromQL</th></tr></thead>\n'
            f"<tbody>\n{''.join(rows)}</tbody>\n</table>\n"
        )
        sections.append(_section(f"domain-{domain}", _e(domain), body))
    return "".join(sections)


def _footer(page: Page) -> str:
    links = [
        (f"/summary{_query(page)}", "Summary JSON"),
        (f"/summary{_query(page, explain='1')}", "Summary with PromQL"),
        (f"/health{_query(page)}", "Health JSON"),
        ("/metrics", "/metrics"),
    ]
    nav = " ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in links)
    environment = page.environment
    parts = [
        f"summary-exporter {__version__}",
        f"APP_ENV={environment.app_env or 'unset'}",
        f"test mode {'on' if environment.testing else 'off'}",
        (
            "pinned to this instant"
            if page.refresh_seconds is None
            else f"reloads every {format_age(page.refresh_seconds)}"
        ),
    ]
    return (
        f'<footer>\n<nav aria-label="Raw data">{nav}</nav>\n'
        f"<p>{_e(' · '.join(parts))}</p>\n</footer>\n"
    )
