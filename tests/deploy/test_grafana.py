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

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.catalog import Catalog, Kind
from tests.deploy.conftest import ROOT, require_tool, run
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
