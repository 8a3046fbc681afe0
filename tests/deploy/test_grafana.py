"""The Grafana dashboard asks only for what the exporter really serves.

Every PromQL expression must be valid PromQL (promtool parses it) and name only metrics that a
running exporter exposes on /metrics; every JSON path the Infinity panels read must exist in a
real /summary answer, as a real number where the column is typed number. The exporter runs
against a real Prometheus holding the gateway dataset.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.catalog import Catalog, Kind
from harness.servers import PrometheusServer
from tests.deploy.conftest import ROOT, require_tool, run
from tests.exporter_client import started
from tests.integration import dataset

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "summary.json"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
PROMETHEUS_TYPE = "prometheus"
INFINITY_TYPE = "yesoreyeram-infinity-datasource"

_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"')
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"}
_GRAFANA_VARIABLE = re.compile(r"\$(?:__\w+|\{\w+\}|\w+)")
_JSON_PATH = re.compile(r"[a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*")


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included."""
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def targets(dashboard: dict[str, Any], datasource_type: str) -> list[dict[str, Any]]:
    return [
        target
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == datasource_type
    ]


def metric_names(expression: str) -> tuple[set[str], set[str]]:
    """The metric names an expression selects, and its regular expressions on __name__."""
    regexes: set[str] = set()
    names: set[str] = set()
    for operator, value in _NAME_MATCHER.findall(expression):
        (regexes if operator == "=~" else names).add(value)
    text = _GRAFANA_VARIABLE.sub(" ", expression)
    text = re.sub(r"\{[^}]*\}", " ", _STRING.sub('""', text))  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)  # label lists of by (...), on (...), ...
    for identifier, call in _IDENTIFIER.findall(text):
        if not call and identifier.lower() not in _KEYWORDS:
            names.add(identifier)
    return names, regexes


def exposed_names(exposition: str) -> set[str]:
    """The series names an exposition can give, declared families without samples included."""
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type in ("histogram", "summary"):
            names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
        else:
            names.add(family.name)
    return names


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def datasources() -> dict[str, dict[str, Any]]:
    text = (PROVISIONING / "datasources" / "datasources.yml").read_text()
    return {ds["uid"]: ds for ds in yaml.safe_load(text)["datasources"]}


def test_expression_parser_finds_names_and_skips_functions_labels_and_ranges() -> None:
    names, regexes = metric_names(
        'histogram_quantile(0.95, sum by (le) (rate(x_bucket{a="b", c=~"d|e"}[$__rate_interval])))'
        ' / on (job) group_left (instance) y offset 5m or vector(0) and {__name__=~"z_.+"}'
    )
    assert names == {"x_bucket", "y"}
    assert regexes == {"z_.+"}


def test_every_panel_uses_a_provisioned_datasource(
    dashboard: dict[str, Any], datasources: dict[str, dict[str, Any]]
) -> None:
    for panel in panels(dashboard):
        for item in [panel, *panel.get("targets", [])]:
            if "datasource" in item:
                uid, kind = item["datasource"]["uid"], item["datasource"]["type"]
                assert datasources[uid]["type"] == kind, panel["title"]
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    [entry] = provider["providers"]
    assert entry["options"]["path"] == "/var/lib/grafana/dashboards"  # mounted by compose


def test_one_row_per_domain_with_stat_gauge_and_table_panels(
    dashboard: dict[str, Any], catalog: Catalog
) -> None:
    rows: dict[str, list[dict[str, Any]]] = {}
    current: list[dict[str, Any]] = []
    for panel in sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        if panel["type"] == "row":
            current = rows.setdefault(panel["title"], [])
        else:
            current.append(panel)
    by_domain = {}
    for domain in catalog.domains:
        matching = [
            row_panels
            for row_panels in rows.values()
            if any(
                f"summary_{domain}_" in target.get("expr", "")
                for panel in row_panels
                for target in panel.get("targets", [])
            )
        ]
        assert len(matching) == 1, f"{domain}: expected one row, found {len(matching)}"
        by_domain[domain] = matching[0]
    for domain, row_panels in by_domain.items():
        assert {"stat", "gauge", "table"} <= {panel["type"] for panel in row_panels}, domain


def test_every_numeric_field_has_its_gauge_on_the_dashboard(
    dashboard: dict[str, Any], catalog: Catalog
) -> None:
    expressions = " ".join(target["expr"] for target in targets(dashboard, PROMETHEUS_TYPE))
    for domain, field, spec in catalog.fields():
        for gauge in spec.gauge_names(domain, field):
            assert re.search(rf"\b{gauge}\b", expressions), (domain, field, gauge)


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]  # Grafana's grid is 24 wide
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = panel["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))


def test_every_expression_is_valid_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rules = [
        # Grafana replaces $__rate_interval and friends before Prometheus sees the query.
        {"record": f"dashboard:expression_{i}", "expr": _GRAFANA_VARIABLE.sub("1m", t["expr"])}
        for i, t in enumerate(targets(dashboard, PROMETHEUS_TYPE))
    ]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_every_expression_names_only_metrics_the_exporter_exposes(
    dashboard: dict[str, Any], start_exporter: Any, prometheus: Any
) -> None:
    client = await start_exporter(prometheus.url)
    await _first_refresh(client)
    response = await client.get("/metrics")
    assert response.status == 200
    exposed = exposed_names(await response.text())
    for target in targets(dashboard, PROMETHEUS_TYPE):
        names, regexes = metric_names(target["expr"])
        assert names or regexes, target["expr"]
        assert names <= exposed, f"{target['expr']}: not on /metrics: {names - exposed}"
        for regex in regexes:
            assert any(re.fullmatch(regex, name) for name in exposed), target["expr"]


async def test_every_infinity_path_exists_in_a_real_summary(
    dashboard: dict[str, Any],
    datasources: dict[str, dict[str, Any]],
    start_exporter: Any,
    environments_prometheus: Any,
    catalog: Catalog,
) -> None:
    # The legacy gateway, which writes every metric the catalog reads.
    client = await start_exporter(
        environments_prometheus.url, selector=f'job="{dataset.LEGACY_JOB}"'
    )
    await _first_refresh(client)
    infinity = targets(dashboard, INFINITY_TYPE)
    assert infinity
    numeric_fields = {
        f"metrics.{domain}.{field}"
        for domain, field, spec in catalog.fields()
        if spec.kind not in (Kind.LABELS, Kind.TABLE)
    }
    read: set[str] = set()
    for target in infinity:
        assert datasources[target["datasource"]["uid"]]["url"].startswith("http://")
        assert (target["type"], target["source"], target["parser"]) == ("json", "url", "backend")
        assert target["url_options"]["method"] == "GET"
        # The panel's own request (the background snapshot), and the same at a busy instant,
        # where every field of the dataset has a value.
        latest = await _get_json(client, target["url"])
        busy = await _get_json(client, target["url"], time=str(dataset.BUSY_AT), window="5m")
        for column in target["columns"]:
            path = ".".join(filter(None, [target["root_selector"], column["selector"]]))
            assert _JSON_PATH.fullmatch(path), f"{path}: only plain dotted paths are checked"
            for document in (latest, busy):
                _resolve(document, path)  # present, possibly null
            value = _resolve(busy, path)
            if column["type"] == "number":
                assert isinstance(value, int | float), path
                assert not isinstance(value, bool), path
            elif column["type"] == "boolean":
                assert isinstance(value, bool), path
            else:
                assert isinstance(value, str), path
            read.add(path)
    assert numeric_fields <= read  # the JSON table shows every numeric field


async def _first_refresh(client: Any) -> None:
    """Waits until the exporter has a snapshot (before its first refresh it answers 503)."""
    for _ in range(200):
        response = await client.get("/summary")
        if response.status == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the exporter never finished its first refresh")


async def _get_json(client: Any, path: str, **params: str) -> Any:
    response = await client.get(path, params=params)
    assert response.status == 200, await response.text()
    return json.loads(await response.text())


def _resolve(document: Any, path: str) -> Any:
    value = document
    for key in path.split("."):
        assert isinstance(value, dict), f"{path}: {key} is not inside an object"
        assert key in value, f"{path}: no {key!r} in the document"
        value = value[key]
    return value


def table_panel(dashboard: dict[str, Any], gauges: set[str]) -> dict[str, Any]:
    """The one table panel that queries all of these gauges."""
    [panel] = [
        panel
        for panel in panels(dashboard)
        if panel["type"] == "table"
        and gauges
        <= {n for t in panel.get("targets", []) for n in metric_names(t.get("expr", ""))[0]}
    ]
    return panel


def column_gauges(catalog: Catalog, reference: str) -> set[str]:
    domain, _, name = reference.partition(".")
    spec = catalog.field(reference)
    assert spec is not None
    return {spec.column_gauge_name(domain, name, column) for column in spec.columns}


@pytest.mark.parametrize(
    ("reference", "sorted_by", "descending"),
    [("providers.by_provider", "Health score", False), ("models.by_model", "Requests", True)],
)
def test_each_table_is_one_panel_of_its_columns_in_the_exporters_order(
    dashboard: dict[str, Any], catalog: Catalog, reference: str, sorted_by: str, descending: bool
) -> None:
    panel = table_panel(dashboard, column_gauges(catalog, reference))
    assert all(target.get("format") == "table" for target in panel["targets"])
    transformations = {t["id"]: t["options"] for t in panel["transformations"]}
    assert "merge" in transformations
    assert transformations["sortBy"]["sort"] == [{"field": sorted_by, "desc": descending}]
    assert panel["options"]["sortBy"] == [{"displayName": sorted_by, "desc": descending}]
    renamed = transformations["organize"]["renameByName"]
    assert sorted_by in renamed.values()


def test_the_providers_table_shows_each_breaker_and_status_in_colour(
    dashboard: dict[str, Any], catalog: Catalog
) -> None:
    panel = table_panel(dashboard, column_gauges(catalog, "providers.by_provider"))
    organize = next(t["options"] for t in panel["transformations"] if t["id"] == "organize")
    # The label columns are shown, their constant 1s are not.
    assert {"breaker": "Breaker", "status": "Status"}.items() <= organize["renameByName"].items()
    assert not {"breaker", "status"} & set(organize["excludeByName"])
    colours = {
        override["matcher"]["options"]: {
            value: option["color"]
            for prop in override["properties"]
            if prop["id"] == "mappings"
            for mapping in prop["value"]
            for value, option in mapping["options"].items()
        }
        for override in panel["fieldConfig"]["overrides"]
    }
    assert colours["Breaker"] == {"open": "red", "half_open": "orange", "closed": "green"}
    assert colours["Status"] == {"unavailable": "red", "degraded": "orange", "healthy": "green"}


def test_money_not_billed_is_the_largest_figure_of_its_row_and_red_above_zero(
    dashboard: dict[str, Any],
) -> None:
    top_level = sorted(dashboard["panels"], key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"]))
    rows = [i for i, panel in enumerate(top_level) if panel["type"] == "row"]
    [money] = [
        panel
        for panel in top_level
        if panel["type"] == "stat"
        and panel["targets"][0]["expr"] == "max(summary_business_missed_deductions_usd)"
    ]
    start = max(i for i in rows if i < top_level.index(money))
    end = min([i for i in rows if i > start] + [len(top_level)])
    row_stats = [p for p in top_level[start + 1 : end] if p["type"] == "stat"]
    assert row_stats[0] is money  # the top left of its row
    area = money["gridPos"]["w"] * money["gridPos"]["h"]
    assert all(p["gridPos"]["w"] * p["gridPos"]["h"] < area for p in row_stats[1:])
    steps = money["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [step["color"] for step in steps] == ["green", "red"]
    assert 0 < steps[1]["value"] < 0.01
    # The rows say what an on-call engineer asks first: is it up, which provider, money.
    assert [top_level[i]["title"] for i in rows][:3] == [
        "Gateway: is it up?",
        "Providers: which one?",
        "Money: are we losing any?",
    ]


async def test_the_providers_table_queries_give_the_exporters_rows_worst_first(
    dashboard: dict[str, Any],
    catalog: Catalog,
    start_exporter: Any,
    live_prometheus: Any,
    tmp_path: Path,
) -> None:
    # A Prometheus scraping a running exporter, as in compose; the exporter reads a gateway
    # whose busy half-hour ends now (six providers, one breaker open, one without attempts).
    client = await started(start_exporter, live_prometheus.url)
    expected = (await _get_json(client, "/summary"))["metrics"]["providers"]["by_provider"]
    spec = catalog.field("providers.by_provider")
    assert spec is not None
    gauges = column_gauges(catalog, "providers.by_provider")
    panel = table_panel(dashboard, gauges)
    column_of = {spec.column_gauge_name("providers", "by_provider", c): c for c in spec.columns}
    columns = {
        target["refId"]: column_of[name]
        for target in panel["targets"]
        for name in metric_names(target["expr"])[0]
    }
    assert set(columns.values()) == set(spec.columns)  # every column, once
    scraped = f"127.0.0.1:{client.server.port}"
    with PrometheusServer.start(
        [], tmp_path / "scraper", scrape={"exporter": [scraped]}
    ) as scraper:
        answers = await _answers_once_scraped(scraper.url, panel["targets"], len(expected))
    # Each provider's cells as the panel gets them: a label column's cell is the label named
    # after the column (the series' value is 1), a numeric column's the value.
    rows: dict[str, dict[str, Any]] = {}
    for ref, samples in answers.items():
        name = columns[ref]
        for sample in samples:
            cells = rows.setdefault(sample["metric"][spec.label or ""], {})
            numeric = spec.columns[name].numeric
            cells[name] = float(sample["value"][1]) if numeric else sample["metric"][name]
    worst_first = [row["provider"] for row in expected]
    assert sorted(rows, key=lambda provider: (rows[provider]["health_score"], provider)) == (
        worst_first
    )
    for row in expected:
        for name, column in spec.columns.items():
            cell = rows[row["provider"]].get(name)
            if not column.numeric or row[name] is None:
                # A null has no series: Grafana shows an empty cell, never a number.
                assert cell == row[name], (row["provider"], name)
            else:
                assert cell == pytest.approx(row[name] * column.gauge_factor), (
                    row["provider"],
                    name,
                )
    assert len(expected) == 6
    assert [row["breaker"] for row in expected].count("open") == 1
    assert any(row["error_rate"] is None for row in expected)


async def _answers_once_scraped(
    url: str, queries: list[dict[str, Any]], rows: int
) -> dict[str, list[Any]]:
    """Each query's instant answer once the exporter has been scraped (Prometheus applies its
    targets a few seconds after it starts): the first query, requests, has a series for every
    row, and a scrape is one commit, so the later queries see the same scrape."""
    async with aiohttp.ClientSession() as session:
        for _ in range(150):
            answers = {}
            for query in queries:
                async with session.get(
                    f"{url}/api/v1/query", params={"query": query["expr"]}
                ) as response:
                    answers[query["refId"]] = (await response.json())["data"]["result"]
            if len(answers[queries[0]["refId"]]) == rows:
                return answers
            await asyncio.sleep(0.2)
    raise AssertionError(f"the scraper never had {rows} rows: {answers}")
