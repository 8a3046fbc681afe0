"""The status page as HTML: what it shows, what it escapes, and that it needs nothing else."""

from __future__ import annotations

import re
from dataclasses import replace

from exporter.catalog import Catalog, Unit
from exporter.environment import Environment
from exporter.errors import UpstreamUnreachable
from exporter.health import assess
from exporter.page import SPARK_HEIGHT, Page, render_page
from exporter.snapshot import Cut, FieldValue, Row, Snapshot, Source
from exporter.sparklines import Sparkline
from tests.page_text import read_page, visible_text

AT = 1_767_227_400.0
ENVIRONMENT = Environment("production", None)


def snapshot_of(catalog: Catalog, source: Source = "background") -> Snapshot:
    """Every field 3 (an empty list for lists) at AT."""
    fields = {
        (domain, name): FieldValue([] if spec.label else 3, AT)
        for domain, name, spec in catalog.fields()
    }
    return Snapshot(
        instant=AT,
        window="5m",
        fields=fields,
        upstream="http://prom:9090",
        catalog=catalog,
        source=source,
    )


def page_of(
    catalog: Catalog,
    snapshot: Snapshot | None,
    sparklines: tuple[Sparkline, ...] = (),
    now: float = AT + 5,
    refresh_seconds: float | None = 15.0,
    environment: Environment = ENVIRONMENT,
) -> str:
    health = assess(catalog, snapshot, environment, as_of=now, max_staleness=150.0)
    return render_page(
        Page(
            catalog=catalog,
            snapshot=snapshot,
            health=health,
            sparklines=sparklines,
            environment=environment,
            now=now,
            refresh_seconds=refresh_seconds,
            prometheus_url="http://prom:9090",
        )
    )


def line(points: tuple[tuple[float, float], ...], reason: str | None = None) -> Sparkline:
    return Sparkline(
        domain="http",
        name="request_rate_per_minute",
        unit=Unit.PER_MINUTE,
        promql="sum(rate(x[5m])) * 60",
        start=AT - 3600,
        end=AT,
        step=60,
        points=points,
        reason=reason,
    )


def test_the_page_shows_the_overall_status_every_check_and_every_field(catalog: Catalog) -> None:
    text = visible_text(page_of(catalog, snapshot_of(catalog)))
    assert text.startswith("Gateway status critical")  # 3 of 3 providers unavailable
    for check in ("http_error_rate", "providers_unavailable", "synthetic_series", "test_mode"):
        assert check in text
    for domain, name, _ in catalog.fields():
        assert domain in text
        assert name in text
    assert "Evaluated at 2026-01-01 00:30:00 UTC over the last 5m" in text
    assert "3 of 3 (100 %)" in text


def test_the_page_links_to_the_json_metrics_and_each_fields_promql(catalog: Catalog) -> None:
    page = page_of(catalog, snapshot_of(catalog, source="on_demand"))
    links = re.findall(r'href="([^"]*)"', page)
    pinned = "time=2026-01-01T00%3A30%3A00Z&amp;window=5m"
    assert f"/summary?{pinned}" in links
    assert f"/summary?explain=1&amp;{pinned}" in links
    assert f"/health?{pinned}" in links
    assert "/metrics" in links
    promql_links = [link for link in links if link.startswith("http://prom:9090/graph?g0.expr=")]
    assert len(promql_links) == len(catalog.fields())
    assert "g0.moment_input=2026-01-01+00%3A30%3A00" in promql_links[0]


def test_every_value_is_escaped(catalog: Catalog) -> None:
    snapshot = snapshot_of(catalog)
    key = ("http", "error_rate")
    fields = dict(snapshot.fields) | {key: FieldValue(None, AT, reason="<img src=x onerror=1>")}
    page = page_of(
        catalog,
        replace(snapshot, fields=fields, upstream='"><script>alert(1)</script>'),
        environment=Environment("<b>prod</b>", None),
    )
    assert "<script>" not in page
    assert "<img" not in page
    assert "<b>prod" not in page
    text = visible_text(page)
    assert "null: <img src=x onerror=1>" in text
    assert "APP_ENV=<b>prod</b>" in text


def test_the_page_loads_nothing_from_anywhere(catalog: Catalog) -> None:
    page = page_of(catalog, snapshot_of(catalog), sparklines=(line(((AT - 60, 1.0), (AT, 2.0))),))
    assert read_page(page).loads == []
    assert "url(" not in page
    assert "@import" not in page


def test_a_live_page_reloads_itself_and_a_pinned_one_does_not(catalog: Catalog) -> None:
    assert '<meta http-equiv="refresh" content="15">' in page_of(catalog, snapshot_of(catalog))
    pinned = page_of(catalog, snapshot_of(catalog), refresh_seconds=None)
    assert "http-equiv" not in pinned
    assert "pinned to this instant" in visible_text(pinned)


def test_a_stale_snapshot_shows_a_banner_with_the_age(catalog: Catalog) -> None:
    error = UpstreamUnreachable("http://prom:9090", "cannot connect: Connection refused")
    fields = {
        key: replace(field, error=error) for key, field in snapshot_of(catalog).fields.items()
    }
    snapshot = replace(snapshot_of(catalog), instant=AT + 200, fields=fields)
    text = visible_text(page_of(catalog, snapshot, now=AT + 200))
    assert (
        "Stale: these values are 3 min 20 s old; the upstream did not answer:"
        " http://prom:9090: cannot connect: Connection refused"
    ) in text
    assert "stale, 3 min 20 s old" in text


def test_a_fresh_snapshot_has_no_banner(catalog: Catalog) -> None:
    assert 'role="alert"' not in page_of(catalog, snapshot_of(catalog))


def test_before_the_first_refresh_the_page_says_it_is_waiting(catalog: Catalog) -> None:
    text = visible_text(page_of(catalog, None))
    assert "Waiting for the first refresh" in text
    assert "No snapshot yet" in text


def test_a_sparkline_is_drawn_with_gaps_where_steps_have_no_value(catalog: Catalog) -> None:
    points = ((AT - 180, 1.0), (AT - 120, 2.0), (AT, 4.0))  # AT - 60 is missing
    page = page_of(catalog, snapshot_of(catalog), sparklines=(line(points),))
    svg = re.search(r"<svg.*?</svg>", page, re.DOTALL)
    assert svg is not None
    assert svg.group().count("<polyline") == 1  # the first two points
    assert svg.group().count("<circle") == 1  # the last one, alone after the gap
    assert "latest 4 /min · min 1 /min · max 4 /min" in visible_text(page)


def test_a_missing_sparkline_says_so_instead_of_drawing_zeros(catalog: Catalog) -> None:
    page = page_of(
        catalog, snapshot_of(catalog), sparklines=(line((), reason="no data in the last hour"),)
    )
    assert "<svg" not in page
    assert "No sparkline: no data in the last hour" in visible_text(page)


def with_fields(snapshot: Snapshot, **fields: FieldValue) -> Snapshot:
    """The snapshot with these fields ("domain__field") replaced."""
    replaced = dict(snapshot.fields)
    for key, field in fields.items():
        domain, _, name = key.partition("__")
        replaced[(domain, name)] = field
    return replace(snapshot, fields=replaced)


def test_a_dead_gateway_is_the_first_line_of_the_page(catalog: Catalog) -> None:
    dead = with_fields(snapshot_of(catalog), gateway__targets_up=FieldValue(0, AT))
    page = page_of(catalog, dead)
    text = visible_text(page)
    assert text.startswith(
        "Gateway down critical The gateway is down: gateway_targets 0 of 3 (0 %)"
    )
    assert "<title>CRITICAL · gateway down · gateway status</title>" in page


def test_part_of_the_gateway_down_is_said_first_too(catalog: Catalog) -> None:
    partial = with_fields(snapshot_of(catalog), gateway__targets_up=FieldValue(2, AT))
    text = visible_text(page_of(catalog, partial))
    assert text.startswith("Gateway partly down")
    assert "Part of the gateway is down: gateway_targets 2 of 3 (66.67 %)" in text


def test_a_live_gateway_adds_nothing_to_the_first_line(catalog: Catalog) -> None:
    text = visible_text(page_of(catalog, snapshot_of(catalog)))
    assert "The gateway is down" not in text
    assert "Whether the gateway is up" not in text


def test_a_lower_bound_is_shown_with_at_least_and_why(catalog: Catalog) -> None:
    bounded = with_fields(
        snapshot_of(catalog), http__p95_latency_ms=FieldValue(5000.0, AT, bound="at_least")
    )
    text = visible_text(page_of(catalog, bounded))
    assert "≥ 5000 ms at least: more than 5 % of the requests took longer" in text


def test_a_table_shows_its_rows_entities_in_order_and_a_check_who_is_behind_it(
    catalog: Catalog,
) -> None:
    snapshot = snapshot_of(catalog)
    rows: list[Row] = [
        {"provider": "groq", "breaker": "open"},
        {"provider": "openai", "breaker": "closed"},
    ]
    fields = dict(snapshot.fields) | {("providers", "by_provider"): FieldValue(rows, AT)}
    named = FieldValue(["groq"], AT, series=(("groq", 1.0),))
    snapshot = replace(snapshot, fields=fields, names={"provider_breakers_open": named})
    text = visible_text(page_of(catalog, snapshot))
    assert "by_provider groq, openai" in text
    assert "open: groq" in text


def test_sparklines_skipped_for_the_budget_are_said_once(catalog: Catalog) -> None:
    reason = "skipped: the on-demand budget of 60 evaluations a minute is spent; retry"
    skipped = replace(line((), reason=reason), skipped=True)
    page = page_of(catalog, snapshot_of(catalog), sparklines=(skipped, skipped, skipped))
    text = visible_text(page)
    assert "<svg" not in page
    assert text.count("Sparklines skipped:") == 1
    assert "the on-demand budget of 60 evaluations a minute is spent" in text


def headings(page: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<h2[^>]*>(.*?)</h2>", page)]


PROVIDERS: list[Row] = [
    {"provider": "groq", "requests": 40, "error_rate": 100.0, "avg_response_time_ms": 10000.0,
     "breaker": "open", "health_score": 0.0, "status": "unavailable"},
    {"provider": "openrouter", "requests": 80, "error_rate": 25.0, "avg_response_time_ms": 1250.0,
     "breaker": "closed", "health_score": 75.0, "status": "degraded"},
    {"provider": "fireworks", "requests": 0, "error_rate": None, "avg_response_time_ms": None,
     "breaker": "half_open", "health_score": 100.0, "status": "healthy"},
]  # fmt: skip
LONG_MODEL = "accounts/fireworks/models/llama-v3p1-405b-instruct"
MODELS: list[Row] = [
    {"model": LONG_MODEL, "requests": 120, "error_rate": 0.0, "tokens": 30000, "credits": 10.0,
     "avg_latency_ms": 2000.0},
]  # fmt: skip


def incident(catalog: Catalog) -> Snapshot:
    """One breaker open (groq), money not billed, the rest quiet."""
    snapshot = with_fields(
        snapshot_of(catalog),
        providers__total_providers=FieldValue(3, AT),
        providers__unavailable_providers=FieldValue(1, AT),
        providers__open_circuit_breakers=FieldValue(1, AT),
        providers__by_provider=FieldValue(
            PROVIDERS,
            AT,
            cells=(("fireworks", "error_rate", "no inference attempts in the window (0/0)"),),
        ),
        models__by_model=FieldValue(MODELS, AT, cut=Cut(1, 12, "EXPORTER_TOP_MODELS")),
        http__error_rate=FieldValue(0.0, AT),
        http__p95_latency_ms=FieldValue(300.0, AT),
        models__inference_error_rate=FieldValue(60.0, AT),
        business__missed_deductions_usd=FieldValue(2.5, AT),
        business__payment_mismatches=FieldValue(0, AT),
        database__pool_utilization=FieldValue(None, AT, reason="no pool metric"),
        database__redis_up=FieldValue(1, AT),
        gateway__event_loop_lag_ms=FieldValue(2.0, AT),
        gateway__newest_sample_age_ms=FieldValue(100.0, AT),
    )
    named = {
        "provider_breakers_open": FieldValue(["groq"], AT, series=(("groq", 1.0),)),
        "missed_credit_deductions": FieldValue(
            ["retry_exhausted"], AT, series=(("retry_exhausted", 2.5),)
        ),
    }
    return replace(snapshot, names=named)


def test_the_first_screen_says_what_is_wrong_then_who_then_the_rest(catalog: Catalog) -> None:
    page = page_of(catalog, incident(catalog), sparklines=(line(((AT, 1.0),)),))
    assert headings(page)[:6] == [
        "What is wrong",
        "providers.by_provider",
        "models.by_model",
        "Last hour",
        "All checks",
        "gateway",
    ]
    text = visible_text(page)
    wrong = text[text.index("What is wrong") : text.index("providers.by_provider")]
    # Critical first, then degraded, each with who is behind it; the unknown ones named after.
    assert wrong.index("inference_error_rate 60 %") < wrong.index("provider_breakers_open")
    assert "provider_breakers_open 1 of 3 (33.33 %) open: groq" in wrong
    assert "missed_credit_deductions 2.5 USD by reason: retry_exhausted 2.5 USD" in wrong
    assert "degraded above 0 USD" in wrong
    assert "No value, so unknown: pool_utilization" in wrong
    assert "http_error_rate" not in wrong  # ok: only in the list of every check, below


def test_nothing_wrong_is_said_as_such(catalog: Catalog) -> None:
    quiet = with_fields(
        incident(catalog),
        providers__unavailable_providers=FieldValue(0, AT),
        providers__open_circuit_breakers=FieldValue(0, AT),
        models__inference_error_rate=FieldValue(1.0, AT),
        business__missed_deductions_usd=FieldValue(0.0, AT),
    )
    text = visible_text(page_of(catalog, quiet))
    assert "Nothing is wrong The 14 checks that have a value are ok." in text
    assert "What is wrong" not in text


def test_the_providers_table_lists_every_row_worst_first_with_its_breaker(catalog: Catalog) -> None:
    page = page_of(catalog, incident(catalog))
    text = visible_text(page)
    assert (
        "provider requests error rate avg response time ms breaker health score status"
        " groq 40 100 % 10000 open 0 unavailable"
        " openrouter 80 25 % 1250 closed 75 degraded"
        " fireworks 0 — — half_open 100 healthy"
    ) in text
    # The row of an open breaker is marked as critical, its breaker and status too.
    groq = re.search(r'<tr class="critical"><th scope="row" class="entity">.*?</tr>', page)
    assert groq is not None
    assert "groq" in groq.group()
    assert '<span class="pill critical">open</span>' in groq.group()
    assert '<span class="pill critical">unavailable</span>' in groq.group()
    assert '<span class="pill degraded">half_open</span>' in page
    # A null cell says why on hover.
    assert '<span title="no inference attempts in the window (0/0)">—</span>' in page


def test_a_cut_table_says_how_many_rows_it_kept_of_how_many(catalog: Catalog) -> None:
    text = visible_text(page_of(catalog, incident(catalog)))
    assert "The first 1 of 12 rows (EXPORTER_TOP_MODELS)." in text


def test_a_long_label_value_wraps_after_its_slashes_and_keeps_its_name_whole(
    catalog: Catalog,
) -> None:
    page = page_of(catalog, incident(catalog))
    assert (
        f'<span title="{LONG_MODEL}">accounts/<wbr>fireworks/<wbr>models/<wbr>'
        "llama-v3p1-405b-instruct</span>"
    ) in page


def test_a_table_without_rows_says_why(catalog: Catalog) -> None:
    empty = with_fields(
        incident(catalog),
        providers__by_provider=FieldValue([], AT),
        models__by_model=FieldValue(None, AT, reason="model_inference_requests_total is gone"),
    )
    text = visible_text(page_of(catalog, empty))
    assert "providers.by_provider" in text
    assert "No rows in the window." in text
    assert "No rows: model_inference_requests_total is gone" in text


def test_the_stale_banner_is_the_first_card_of_the_page(catalog: Catalog) -> None:
    error = UpstreamUnreachable("http://prom:9090", "cannot connect: Connection refused")
    fields = {key: replace(f, error=error) for key, f in snapshot_of(catalog).fields.items()}
    page = page_of(catalog, replace(snapshot_of(catalog), fields=fields), now=AT + 200)
    # Inside <main>, as wide as the sections that follow it.
    assert '<main>\n<div class="banner" role="alert">Stale:' in page


def test_the_page_lays_out_at_the_width_of_the_device(catalog: Catalog) -> None:
    page = page_of(catalog, snapshot_of(catalog))
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page


def test_a_zero_is_drawn_at_zero_and_only_a_step_without_value_is_a_gap(catalog: Catalog) -> None:
    # Zeros, a gap (AT - 120 has no value), then one and zero again.
    points = ((AT - 240, 0.0), (AT - 180, 0.0), (AT - 60, 1.0), (AT, 0.0))
    page = page_of(catalog, snapshot_of(catalog), sparklines=(line(points),))
    svg = re.search(r"<svg.*?</svg>", page, re.DOTALL)
    assert svg is not None
    zero = SPARK_HEIGHT - 3  # the bottom of the drawing, where the dotted zero line is
    assert f'y1="{zero:.1f}"' in svg.group()
    polylines = re.findall(r'<polyline points="([^"]*)"/>', svg.group())
    assert [[float(p.split(",")[1]) for p in shape.split()] for shape in polylines] == [
        [zero, zero],
        [3.0, zero],
    ]
    assert "latest 0 /min · min 0 /min · max 1 /min" in visible_text(page)
