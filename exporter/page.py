"""The status page: the gateway's liveness, the domains and the checks, drawn on the server.

One self-contained HTML document: inline CSS, inline SVG sparklines, no script and no
external asset, so it works air-gapped. Every value from a snapshot, the catalog or the
environment is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from exporter import __version__
from exporter.catalog import Catalog, Kind
from exporter.environment import Environment
from exporter.health import CheckResult, Health, Status, format_age, format_value
from exporter.snapshot import Snapshot, format_instant
from exporter.sparklines import Sparkline

SPARK_WIDTH = 240
SPARK_HEIGHT = 48
_PAD = 3

_CSS = """
:root { --ok: #1a7f37; --degraded: #9a6700; --critical: #cf222e; --unknown: #59636e; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: #1f2328; background: #f6f8fa; }
header, main, footer { max-width: 1200px; margin: 0 auto; padding: 0 16px; }
header { padding-top: 16px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; display: flex; gap: 12px; align-items: center; }
h2 { font-size: 1.15rem; margin: 0 0 4px; }
section { background: #fff; border: 1px solid #d1d9e0; border-radius: 8px; padding: 12px 16px;
  margin: 12px 0; }
.meta, .help, footer { color: #59636e; margin: 0 0 8px; }
nav a { margin-right: 14px; }
.badge { display: inline-block; color: #fff; border-radius: 6px; padding: 1px 10px;
  font-weight: 600; text-transform: uppercase; font-size: 0.85rem; letter-spacing: 0.03em; }
.ok { background: var(--ok); } .degraded { background: var(--degraded); }
.critical { background: var(--critical); } .unknown { background: var(--unknown); }
.banner { border-radius: 8px; padding: 10px 16px; margin: 12px 0; font-weight: 600;
  background: #fff8c5; border: 1px solid #d4a72c; }
.liveness { margin: 0 0 8px; font-weight: 600; }
.liveness.critical { color: var(--critical); background: none; }
.liveness.degraded { color: var(--degraded); background: none; }
.liveness.unknown { color: var(--unknown); background: none; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 5px 8px; border-top: 1px solid #e5e9ed; }
thead th { border-top: none; color: #59636e; font-weight: 600; }
td.value { font-variant-numeric: tabular-nums; font-weight: 600; white-space: nowrap; }
.reason { color: #59636e; font-weight: normal; }
.rows { white-space: normal; }
code { font: 0.85rem/1.4 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap;
  word-break: break-word; }
details summary { cursor: pointer; color: #0969da; white-space: nowrap; }
.sparks { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr));
  gap: 12px; }
figure { margin: 0; }
figcaption { font-size: 0.9rem; }
svg.spark { display: block; background: #f6f8fa; border-radius: 4px; }
svg.spark polyline { fill: none; stroke: #0969da; stroke-width: 1.5; }
svg.spark circle { fill: #0969da; }
.missing { color: #59636e; font-style: italic; margin: 4px 0; }
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
        f"{_header(page)}{_banner(page)}<main>\n"
        f"{_checks(page)}{_sparklines(page)}{_domains(page)}</main>\n"
        f"{_footer(page)}</body>\n</html>\n"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _badge(status: Status) -> str:
    return f'<span class="badge {status.value}">{_e(status.value)}</span>'


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
    links = [
        (f"/summary{_query(page)}", "Summary JSON"),
        (f"/summary{_query(page, explain='1')}", "Summary with PromQL"),
        (f"/health{_query(page)}", "Health JSON"),
        ("/metrics", "/metrics"),
    ]
    nav = " ".join(f'<a href="{_e(href)}">{_e(text)}</a>' for href, text in links)
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
        f'<p class="meta">{meta}</p>\n<nav aria-label="Raw data">{nav}</nav>\n</header>\n'
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


def _checks(page: Page) -> str:
    rows = "".join(_check_row(check) for check in page.health.checks)
    return (
        '<section aria-labelledby="checks">\n<h2 id="checks">Checks</h2>\n'
        '<p class="help">Limits come from the catalog; a check without a value is unknown.</p>\n'
        '<table>\n<thead><tr><th scope="col">Check</th><th scope="col">Status</th>'
        '<th scope="col">Value</th><th scope="col">Limits</th><th scope="col">Details</th>'
        f"</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n</section>\n"
    )


def _check_row(check: CheckResult) -> str:
    notes = [note for note in (check.reason, check.detail) if note]
    reason = "".join(f'<br><span class="reason">{_e(note)}</span>' for note in notes)
    details = f"{_e(check.help)}{_promql_details(check.promql)}"
    return (
        f'<tr><th scope="row">{_e(check.name)}</th><td>{_badge(check.status)}</td>'
        f'<td class="value">{_e(check.display)}{reason}</td><td>{_e(check.threshold)}</td>'
        f"<td>{details}</td></tr>\n"
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
    values = [value for _, value in line.points]
    low = min(0.0, *values)
    high = max(values)
    span = (high - low) or 1.0
    width, height = SPARK_WIDTH - 2 * _PAD, SPARK_HEIGHT - 2 * _PAD

    def x(at: float) -> float:
        return _PAD + (at - line.start) / (line.end - line.start) * width

    def y(value: float) -> float:
        return _PAD + height - (value - low) / span * height

    # A step without a value is a gap in the line, never a zero.
    segments: list[list[tuple[float, float]]] = []
    for at, value in line.points:
        if not segments or at - segments[-1][-1][0] > 1.5 * line.step:
            segments.append([])
        segments[-1].append((at, value))
    shapes = []
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
                # The rows' entities in their order; their columns are in /summary.
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
            rows.append(
                f'<tr><th scope="row">{_e(name)}</th><td class="value">{value}</td>'
                f"<td>{_e(spec.help)}</td>"
                f"<td>{_promql_details([spec.render(snapshot.window)], link)}</td></tr>\n"
            )
        sections.append(
            f'<section aria-labelledby="domain-{_e(domain)}">\n'
            f'<h2 id="domain-{_e(domain)}">{_e(domain)}</h2>\n'
            f'<p class="help">{_e(domain_spec.help)}</p>\n'
            '<table>\n<thead><tr><th scope="col">Field</th><th scope="col">Value</th>'
            '<th scope="col">Meaning</th><th scope="col">Query</th></tr></thead>\n'
            f"<tbody>\n{''.join(rows)}</tbody>\n</table>\n</section>\n"
        )
    return "".join(sections)


def _footer(page: Page) -> str:
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
    return f"<footer><p>{_e(' · '.join(parts))}</p></footer>\n"
