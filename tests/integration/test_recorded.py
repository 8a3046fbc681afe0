"""The recorded series read on a real Prometheus evaluating `summary-exporter rules`: the same
numbers as the raw PromQL at the rules' instant, with and without a selector, PromQL field by
field where a rule is missing, and an error /health and doctor report with
EXPORTER_RECORDED_RULES=on.

One Prometheus holds two environments of the gateway whose busy half-hour ends now, and
evaluates every second two rule groups printed by the command: one with the production
selector, and one without a selector from which the http.total_requests rule was taken out.
Beside them, two crowded environments: each provider and model three times, under other
names with the same numbers, so that three entities tie at every value; their rules are
printed for the rows that an exporter with EXPORTER_MAX_ENTITIES and EXPORTER_TOP_MODELS of
CROWDS keeps: 4 (a cut, and ties at it within the rows recorded) and 1 (more ties at the cut
than the rows recorded).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
import yaml
from prometheus_api_client import PrometheusConnect

from exporter.catalog import Catalog, load_catalog
from exporter.rules import rule_set
from harness.servers import (
    PrometheusServer,
    Sample,
    VictoriaMetricsServer,
    VmalertProcess,
    require_binary,
    wait_for,
)
from tests.exporter_client import command, run_command, started
from tests.integration import dataset

pytestmark = pytest.mark.integration

SELECTOR = f'job="{dataset.PRODUCTION_JOB}"'
TAKEN_OUT = "summary:http_total_requests"
# Crowded environments (their job) and the rows their rules and exporter keep per table.
CROWDS = {"gatewayz-crowd-cut": 4, "gatewayz-crowd-tied": 1}
COPIES = 3


def printed_rules(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_command("rules", "--window", "5m", "--interval", "1s", *args, env=env)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


def crowd_rules(job: str) -> dict[str, Any]:
    rows = str(CROWDS[job])
    limits = {"EXPORTER_MAX_ENTITIES": rows, "EXPORTER_TOP_MODELS": rows}
    return printed_rules("--selector", f'job="{job}"', env=limits)


def crowded(job: str, start: int, until: int) -> Iterable[Sample]:
    """The production gateway under `job`, with COPIES of each provider and model: the
    copies have other names and the same numbers."""
    for sample in dataset.samples(start=start, until=until, job=job):
        yield sample
        if "model" not in sample.labels and "provider" not in sample.labels:
            continue
        for copy in range(1, COPIES):
            labels = {
                key: f"{value}-{copy}" if key in ("model", "provider") else value
                for key, value in sample.labels.items()
            }
            yield Sample(sample.name, labels, sample.timestamp, sample.value)


def environments(workdir: Any, selected: dict[str, Any]) -> tuple[list[Sample], list[Any]]:
    """Production, staging and the crowds up to now, and rule files: `selected` and the
    crowds' rules."""
    now = math.floor(time.time() / dataset.STEP) * dataset.STEP
    # Up to now only: Prometheus stores no rule result before the newest backfilled sample.
    start, until = now - 1800, now
    samples = [
        *dataset.samples(start=start, until=until),
        *dataset.samples(start=start, until=until, job=dataset.STAGING_JOB, scale=2),
        *(sample for job in CROWDS for sample in crowded(job, start, until)),
    ]
    files = []
    for name, rules in (("selected", selected), *((job, crowd_rules(job)) for job in CROWDS)):
        path = workdir / f"{name}.rules.yml"
        path.write_text(yaml.safe_dump(rules))
        files.append(path)
    return samples, files


@pytest.fixture(scope="module")
def ruled_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    require_binary("prometheus")
    workdir = tmp_path_factory.mktemp("ruled-prometheus")
    samples, files = environments(workdir, printed_rules("--selector", SELECTOR))
    plain_rules = printed_rules()
    [group] = plain_rules["groups"]
    group["rules"] = [rule for rule in group["rules"] if rule["record"] != TAKEN_OUT]
    plain = workdir / "plain.rules.yml"
    plain.write_text(yaml.safe_dump(plain_rules))
    with PrometheusServer.start(samples, workdir, rule_files=[*files, plain]) as server:
        oracle = PrometheusConnect(url=server.url, disable_ssl=True)
        # Every group has evaluated once (its existence rule is the last of each).
        groups = len(files) + 1
        evaluated = wait_for(
            lambda: (
                len(oracle.custom_query("count by (fingerprint) (summary:metric_series)")) >= groups
            ),
            timeout=30,
        )
        assert evaluated, server.log_tail()
        yield server


@pytest.fixture(scope="module")
def ruled_victoria_metrics(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[VictoriaMetricsServer]:
    """VictoriaMetrics with the same environments, and vmalert evaluating the production
    selector's and the crowds' rules into it every second."""
    workdir = tmp_path_factory.mktemp("ruled-victoria-metrics")
    samples, files = environments(workdir, printed_rules("--selector", SELECTOR))
    with (
        VictoriaMetricsServer.start(samples, workdir) as server,
        VmalertProcess.start(server, files, workdir) as vmalert,
    ):
        oracle = PrometheusConnect(url=server.url, disable_ssl=True)
        evaluated = wait_for(
            lambda: (
                len(oracle.custom_query("count by (fingerprint) (summary:metric_series)"))
                >= len(files)
            ),
            timeout=30,
        )
        assert evaluated, vmalert.log_tail()
        yield server


async def summaries(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The background summary (read from the rules), and the same window asked on demand as
    raw PromQL at its instant."""
    recorded = json.loads(await (await client.get("/summary", params={"explain": "1"})).text())
    at = recorded["timestamp"]
    response = await client.get("/summary", params={"time": at, "window": "5m", "explain": "1"})
    assert response.status == 200, await response.text()
    raw = json.loads(await response.text())
    assert raw["source"] == "on_demand"
    assert raw["timestamp"] == at
    return recorded, raw


def assert_same(recorded: Any, raw: Any, where: str = "") -> None:
    """Equal, floats to a relative 1e-12 (the JSON's 12 significant digits are the same)."""
    if isinstance(raw, dict):
        assert isinstance(recorded, dict), where
        assert recorded.keys() == raw.keys(), where
        for key in raw:
            assert_same(recorded[key], raw[key], f"{where}.{key}")
    elif isinstance(raw, list):
        assert isinstance(recorded, list), where
        assert len(recorded) == len(raw), where
        for index, (one, other) in enumerate(zip(recorded, raw, strict=True)):
            assert_same(one, other, f"{where}[{index}]")
    elif isinstance(raw, float) and not isinstance(recorded, str):
        assert recorded == pytest.approx(raw, rel=1e-12), where
    else:
        assert recorded == raw, where


def answered_by(document: dict[str, Any]) -> dict[str, str]:
    return {key: entry["answered_by"] for key, entry in document["explain"].items()}


async def test_every_field_read_from_the_rules_equals_its_promql_under_the_selector(
    ruled_prometheus: PrometheusServer, start_exporter: Any, catalog: Catalog
) -> None:
    client = await started(start_exporter, ruled_prometheus.url, selector=SELECTOR)
    recorded, raw = await summaries(client)
    fields = len(catalog.fields())
    assert recorded["recorded_rules"] == {
        "mode": "auto",
        "timestamp": recorded["timestamp"],
        "fields": fields,
        "of": fields,
        "error": None,
    }
    assert set(answered_by(recorded).values()) == {"recorded_rule"}
    assert set(answered_by(raw).values()) == {"promql"}
    # Values, nulls and their reasons, a table's rows, cells and cut: all the same.
    for part in ("metrics", "nulls", "bounds"):
        assert_same(recorded.get(part), raw.get(part), part)
    # The raw answers have traffic to compare: a summary of nulls would prove little.
    assert recorded["metrics"]["http"]["total_requests"] > 0
    assert recorded["metrics"]["providers"]["by_provider"]
    metrics = await (await client.get("/metrics")).text()
    assert f"summary_exporter_recorded_fields {float(fields)}" in metrics


async def test_victoria_metrics_and_vmalert_give_the_same_numbers_either_way(
    ruled_victoria_metrics: VictoriaMetricsServer, start_exporter: Any, catalog: Catalog
) -> None:
    # vmalert asks at the instant it evaluates and stamps the results with a whole second,
    # up to a second apart. Away from the data's 15 s grid, no sample lies in
    # between at either end of a window; only a field of time() itself sees the difference.
    wait_for(lambda: 4 <= time.time() % dataset.STEP <= 11, timeout=dataset.STEP)
    client = await started(start_exporter, ruled_victoria_metrics.url, selector=SELECTOR)
    recorded, raw = await summaries(client)
    assert recorded["recorded_rules"]["fields"] == len(catalog.fields())
    age = ("gateway", "newest_sample_age_ms")
    recorded_age, raw_age = (doc["metrics"][age[0]].pop(age[1]) for doc in (recorded, raw))
    assert abs(recorded_age - raw_age) <= 1000
    for part in ("metrics", "nulls", "bounds"):
        assert_same(recorded.get(part), raw.get(part), part)
    assert recorded["metrics"]["http"]["total_requests"] > 0


def assert_same_at_one_instant(recorded: dict[str, Any], raw: dict[str, Any]) -> None:
    for part in ("metrics", "nulls", "bounds", "cuts"):
        assert_same(recorded.get(part), raw.get(part), part)


TABLES = ("models.by_model", "providers.by_provider")
AGE = "newest_sample_age_ms"


async def crowd_summary(
    request: pytest.FixtureRequest, start_exporter: Any, engine: str, job: str, **overrides: Any
) -> dict[str, Any]:
    """The crowd's recorded summary on `engine`, once checked against the raw one at its
    instant and for a cut of both tables to the rows kept."""
    server = request.getfixturevalue(f"ruled_{engine}")
    if engine == "victoria_metrics":
        wait_for(lambda: 4 <= time.time() % dataset.STEP <= 11, timeout=dataset.STEP)
    limits = {"max_entities": CROWDS[job], "top_models": CROWDS[job]}
    client = await started(
        start_exporter, server.url, selector=f'job="{job}"', **limits, **overrides
    )
    recorded, raw = await summaries(client)
    # vmalert stamps its results up to a second after the instant it asked at.
    recorded_age, raw_age = (doc["metrics"]["gateway"].pop(AGE) for doc in (recorded, raw))
    assert abs(recorded_age - raw_age) <= 1000
    assert_same_at_one_instant(recorded, raw)
    for key in TABLES:
        domain, table = key.split(".")
        assert len(recorded["metrics"][domain][table]) == CROWDS[job]
        assert recorded["cuts"][key]["of"] >= 5 * COPIES
    return recorded


@pytest.mark.parametrize("engine", ["prometheus", "victoria_metrics"])
async def test_tables_cut_with_ties_within_their_recorded_rows_are_read_from_the_rules(
    engine: str, request: pytest.FixtureRequest, start_exporter: Any
) -> None:
    recorded = await crowd_summary(request, start_exporter, engine, "gatewayz-crowd-cut")
    by = answered_by(recorded)
    assert {by[key] for key in TABLES} == {"recorded_rule"}
    # Three models tie at the first value and three at the last row kept: the first of
    # those by name, as from raw PromQL.
    models = [row["model"] for row in recorded["metrics"]["models"]["by_model"]]
    assert models[:3] == [models[0], f"{models[0]}-1", f"{models[0]}-2"]
    assert not models[3].endswith(("-1", "-2"))


@pytest.mark.parametrize("engine", ["prometheus", "victoria_metrics"])
async def test_tables_with_more_ties_at_their_cut_than_recorded_are_asked_as_promql(
    engine: str, request: pytest.FixtureRequest, start_exporter: Any
) -> None:
    recorded = await crowd_summary(
        request, start_exporter, engine, "gatewayz-crowd-tied", recorded_rules="on"
    )
    by = answered_by(recorded)
    # Even with EXPORTER_RECORDED_RULES=on: the rules ran, they hold too few rows.
    assert {by[key] for key in TABLES} == {"promql"}
    assert not [why for why in recorded["nulls"].values() if "RECORDED_RULES" in why]
    assert {by[key] for key in by if key not in TABLES} == {"recorded_rule"}


async def test_an_exporter_keeping_more_rows_than_the_rules_asks_its_tables_as_promql(
    ruled_prometheus: PrometheusServer, start_exporter: Any
) -> None:
    job = "gatewayz-crowd-tied"  # rules for 1 row a table, 2 recorded
    client = await started(
        start_exporter, ruled_prometheus.url, selector=f'job="{job}"', max_entities=4, top_models=4
    )
    recorded, raw = await summaries(client)
    assert_same_at_one_instant(recorded, raw)
    by = answered_by(recorded)
    assert {by[key] for key in TABLES} == {"promql"}
    assert len(recorded["metrics"]["models"]["by_model"]) == 4


async def test_a_missing_rule_is_asked_as_promql_and_the_others_read_from_rules(
    ruled_prometheus: PrometheusServer, start_exporter: Any, catalog: Catalog
) -> None:
    client = await started(start_exporter, ruled_prometheus.url)
    recorded, raw = await summaries(client)
    by = answered_by(recorded)
    assert by.pop("http.total_requests") == "promql"
    assert set(by.values()) == {"recorded_rule"}
    assert recorded["recorded_rules"]["fields"] == len(catalog.fields()) - 1
    for part in ("metrics", "nulls", "bounds"):
        assert_same(recorded.get(part), raw.get(part), part)
    # The plain rules sum both environments: not the production numbers alone.
    selected = await started(start_exporter, ruled_prometheus.url, selector=SELECTOR)
    production = json.loads(await (await selected.get("/summary")).text())
    assert (
        recorded["metrics"]["http"]["request_rate_per_minute"]
        > (production["metrics"]["http"]["request_rate_per_minute"])
    )
    rule = rule_set(load_catalog(), "5m").by_promql[
        catalog.domains["http"].fields["request_rate_per_minute"].render("5m")
    ]
    explained = recorded["explain"]["http.request_rate_per_minute"]
    assert explained["asked"] == f'{rule.record}{{fingerprint="{rule.fingerprint}"}}'


async def test_mode_on_reports_the_missing_rule_in_health_and_doctor(
    ruled_prometheus: PrometheusServer, start_exporter: Any
) -> None:
    client = await started(start_exporter, ruled_prometheus.url, recorded_rules="on")
    health = json.loads(await (await client.get("/health")).text())
    check = health["checks"]["recorded_rules"]
    assert check["status"] == "critical"
    assert TAKEN_OUT in check["reason"]
    assert health["status"] == "critical"
    summary = json.loads(await (await client.get("/summary")).text())
    assert summary["metrics"]["http"]["total_requests"] is None
    assert "EXPORTER_RECORDED_RULES=on" in summary["nulls"]["http.total_requests"]
    assert summary["metrics"]["http"]["request_rate_per_minute"] is not None

    env = {"EXPORTER_PROMETHEUS_URL": ruled_prometheus.url, "EXPORTER_RECORDED_RULES": "on"}
    status, stdout, _ = await command("doctor", env=env)
    assert status == 1
    last = stdout.splitlines()[-1]
    assert "EXPORTER_RECORDED_RULES=on): 1 of" in last
    assert f"{TAKEN_OUT} (http.total_requests)" in last
    status, stdout, _ = await command("doctor", env={**env, "EXPORTER_SELECTOR": SELECTOR})
    assert stdout.splitlines()[-1].startswith("Recording rules (window 5m")
    assert "answered at" in stdout.splitlines()[-1]
