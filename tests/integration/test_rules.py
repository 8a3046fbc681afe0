"""`summary-exporter rules` records, inside Prometheus, the very numbers the JSON serves.

promtool evaluates the generated rule file on the gateway dataset (`promtool test rules`, the
rule engine Prometheus itself runs), and every recorded value must equal the field the
exporter serves from a real Prometheus holding the same dataset, at the same instant, with
the same window, in the JSON's units. A `null` field must have no finite recorded series.

The comparison is to a relative 1e-11 (the JSON writes 12 significant digits), written as
PromQL run by promtool on the recorded series: `sum` and `avg` add series in an order that
depends on storage, so the last bit of 0.1 + 0.25 + ... may differ between a TSDB and
promtool's test storage, and promtool 2.42 compares expected samples with ==.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_api_client import PrometheusConnect

from exporter.catalog import Catalog, FieldSpec, Kind
from exporter.rules import FINGERPRINT_LABEL, WINDOW_LABEL, RecordedRule, rule_set
from harness.servers import Sample, require_binary
from tests.exporter_client import run_command
from tests.integration import dataset

pytestmark = pytest.mark.integration

WINDOW = "5m"
# Instants of the promtool test, in seconds after the dataset's START (promtool's time 0).
INSTANTS = {"busy": dataset.BUSY_AT, "quiet": dataset.QUIET_AT}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def rule_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    result = run_command("rules", "--window", WINDOW)
    assert result.returncode == 0, result.stderr
    path = tmp_path_factory.mktemp("rules") / "summary.rules.yml"
    path.write_text(result.stdout)
    return path


def recorded_fields(catalog: Catalog) -> list[tuple[str, str, FieldSpec]]:
    """The fields compared here: all but the tables (tests/integration/test_recorded.py
    compares those as the exporter reads them)."""
    return [(d, f, spec) for d, f, spec in catalog.fields() if spec.kind is not Kind.TABLE]


def test_generated_rules_pass_promtool_check(rule_file: Path, catalog: Catalog) -> None:
    checked = promtool("check", "rules", str(rule_file))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # A rule per query, and one per table that counts its rows.
    tables = sum(1 for _, _, spec in catalog.fields() if spec.kind is Kind.TABLE)
    assert f"SUCCESS: {len(catalog.queries(WINDOW)) + tables} rules found" in checked.stdout


def test_one_group_of_one_rule_per_query(rule_file: Path, catalog: Catalog) -> None:
    document = yaml.safe_load(rule_file.read_text())
    [group] = document["groups"]
    assert group == rule_set(catalog, WINDOW).group()
    assert group["name"] == f"summary-exporter-{WINDOW}"


async def test_recorded_values_equal_the_json_values_at_the_same_instant(
    rule_file: Path,
    start_exporter: Any,
    prometheus: Any,
    catalog: Catalog,
    tmp_path: Path,
) -> None:
    client = await start_exporter(prometheus.url)
    oracle = PrometheusConnect(url=prometheus.url, disable_ssl=True)
    rules = rule_set(catalog, WINDOW)
    checks: list[dict[str, Any]] = []
    recorded = 0
    for phase, at in INSTANTS.items():
        response = await client.get("/summary", params={"time": str(at), "window": WINDOW})
        assert response.status == 200, await response.text()
        document = json.loads(await response.text())
        assert document["source"] == "on_demand"
        for domain, field, spec in recorded_fields(catalog):
            value = document["metrics"][domain][field]
            rule = rules.by_promql[spec.render(WINDOW)]
            # The answers only: an empty answer's marker has no window label.
            name = _selector(rule.record, {WINDOW_LABEL: WINDOW})
            eval_time = f"{at - dataset.START}s"
            if spec.kind is Kind.LABELS:
                # The JSON lists the label values; their counts come from the same PromQL.
                answer = oracle.custom_query(spec.render(WINDOW), params={"time": at})
                counts = {item["metric"][spec.label]: float(item["value"][1]) for item in answer}
                assert sorted(counts, key=lambda label: (-counts[label], label)) == value
                checks.append(_count_check(name, len(value), eval_time))
                for label in value:
                    labels = {spec.label or "": label}
                    checks.append(_value_check(rule, counts[label], eval_time, labels))
                recorded += len(value)
            elif value is None:
                assert f"{domain}.{field}" in document["nulls"], (phase, domain, field)
                # null in the JSON: no finite answer recorded (NaN and ±Inf are null too).
                finite = f"({name} > -Inf) < +Inf"
                checks.append({"expr": finite, "eval_time": eval_time, "exp_samples": []})
            else:
                checks.append(_count_check(name, 1, eval_time))
                checks.append(_value_check(rule, value, eval_time))
                recorded += 1
    # Both phases must exercise values and nulls, or the comparison proves little.
    assert recorded > len(recorded_fields(catalog))
    assert any(not check["exp_samples"] for check in checks)

    test_file = tmp_path / "summary.test.yml"
    test_file.write_text(
        json.dumps(
            {
                "rule_files": [str(rule_file)],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": f"{dataset.STEP}s",
                        "input_series": input_series(dataset.samples()),
                        "promql_expr_test": checks,
                    }
                ],
            }
        )
    )
    tested = await asyncio.to_thread(promtool, "test", "rules", str(test_file))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_rules_for_another_window_and_a_catalog_from_the_environment(tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(
        "domains:\n  http:\n    fields:\n      total_requests:\n"
        "        query: round(sum(increase(fastapi_requests_total[$window])))\n"
        "        kind: integer\n        unit: count\n        help: Requests.\n"
        "        no_series_means_zero: true\n"
    )
    environment = {**os.environ, "EXPORTER_CATALOG": str(catalog), "EXPORTER_WINDOW": "90s"}
    result = subprocess.run(
        [sys.executable, "-m", "exporter", "rules"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    [group] = yaml.safe_load(result.stdout)["groups"]
    assert group["name"] == "summary-exporter-1m30s"
    [rule, existence] = group["rules"]
    assert rule["record"] == "summary:http_total_requests"
    assert existence["record"] == "summary:metric_series"
    assert "[1m30s]" in rule["expr"]
    path = tmp_path / "rules.yml"
    path.write_text(result.stdout)
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def input_series(samples: Any) -> list[dict[str, str]]:
    """promtool input series, every value of every dataset series written out one by one; a
    series born later has no sample (`_`) before."""
    by_series: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_series[_selector(sample.name, sample.labels)].append(sample)
    series = []
    for selector, points in by_series.items():
        points.sort(key=lambda sample: sample.timestamp)
        # promtool places value i at START + i x STEP: no gaps after a series' first sample.
        first = int(points[0].timestamp - dataset.START) // dataset.STEP
        assert [p.timestamp for p in points] == [
            dataset.START + (first + i) * dataset.STEP for i in range(len(points))
        ], selector
        values = " ".join(["_"] * first + [repr(float(p.value)) for p in points])
        series.append({"series": selector, "values": values})
    return series


def _value_check(
    rule: RecordedRule, expected: float, eval_time: str, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """Holds when the rule's answer exists and equals `expected` to a relative 1e-11."""
    tolerance = 1e-11 * max(1.0, abs(expected))
    series = {**(labels or {}), WINDOW_LABEL: WINDOW, FINGERPRINT_LABEL: rule.fingerprint}
    selector = _selector(rule.record, series)
    return {
        "expr": f"abs({selector} - {float(expected)!r}) <= bool {tolerance!r}",
        "eval_time": eval_time,
        "exp_samples": [{"labels": _selector("", series), "value": 1}],
    }


def _count_check(name: str, series: int, eval_time: str) -> dict[str, Any]:
    """Holds when exactly `series` answers are recorded under `name`."""
    if series == 0:
        return {"expr": name, "eval_time": eval_time, "exp_samples": []}
    return {
        "expr": f"count({name})",
        "eval_time": eval_time,
        "exp_samples": [{"labels": "{}", "value": series}],
    }


def _selector(name: str, labels: Any) -> str:
    pairs = ",".join(f"{key}={json.dumps(value)}" for key, value in sorted(labels.items()))
    return f"{name}{{{pairs}}}" if pairs or not name else name
