"""Recording rules generated from the catalog: one per query, names, labels, what an empty
answer records, and the command's options and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from exporter.catalog import Catalog, load_catalog
from exporter.rules import DEFAULT_INTERVAL, TIE_ROOM, render_rules, rule_set
from exporter.settings import TableLimits
from tests.exporter_client import run_command


def records(catalog: Catalog, window: str = "5m") -> dict[str, str]:
    """Record name → the PromQL it answers."""
    return {rule.record: rule.promql for rule in rule_set(catalog, window).rules}


def test_one_rule_per_distinct_query_of_a_refresh(catalog: Catalog) -> None:
    rules = rule_set(catalog, "5m").rules
    asked = [rule.promql for rule in rules if rule.counts is None]
    assert sorted(asked) == sorted(catalog.queries("5m"))
    assert len({rule.record for rule in rules}) == len(rules)
    assert len({rule.fingerprint for rule in rules}) == len(rules)


def test_names_follow_the_gauges_with_a_colon_in_the_json_units(catalog: Catalog) -> None:
    named = records(catalog)
    http = catalog.domains["http"].fields
    assert named["summary:http_total_requests"] == http["total_requests"].render("5m")
    # Milliseconds and percent as the JSON has them: no division that could lose a bit.
    assert named["summary:http_avg_latency_ms"] == http["avg_latency_ms"].render("5m")
    assert named["summary:http_error_rate_percent"] == http["error_rate"].render("5m")
    assert named["summary:http_p95_latency_ms_lower_bound"] == http[
        "p95_latency_ms"
    ].render_lower_bound("5m")


def test_tables_checks_and_existence_have_rules_too(catalog: Catalog) -> None:
    named = records(catalog)
    by_provider = catalog.domains["providers"].fields["by_provider"]
    assert named["summary:providers_by_provider"] == by_provider.render("5m")
    status = by_provider.columns["status"]
    assert named["summary:providers_by_provider_status"] == status.render("5m")
    synthetic = catalog.checks["synthetic_series"].answer_spec()
    assert named["summary:check_synthetic_series"] == synthetic.render("5m")
    names = catalog.checks["providers_unavailable"].names
    assert names is not None
    assert named["summary:check_providers_unavailable_names"] == names.render("5m")
    assert named["summary:metric_series"] == catalog.existence_query(catalog.sources())


def test_a_table_records_its_first_rows_the_columns_of_those_and_how_many_it_has(
    catalog: Catalog,
) -> None:
    by_model = catalog.domains["models"].fields["by_model"]
    rows = by_model.render("5m")
    rules = {rule.record: rule for rule in rule_set(catalog, "5m", TableLimits(50, 10)).rules}
    first = f"topk({TIE_ROOM * 10}, ((({rows}) > -Inf) < +Inf))"
    assert rules["summary:models_by_model"].expr.startswith(f"label_replace(({first}), ")
    assert rules["summary:models_by_model"].ranked == TIE_ROOM * 10
    requests = rules["summary:models_by_model_requests"]
    column = by_model.columns["requests"].render("5m")
    assert f"(({column}) and on (model) {first})" in requests.expr
    count = rules["summary:models_by_model:count"]
    assert count.counts == rows
    assert f"(count(count by (model) (((({rows}) > -Inf) < +Inf))))" in count.expr
    # The providers table keeps EXPORTER_MAX_ENTITIES, lowest health first.
    providers = rules["summary:providers_by_provider"]
    assert providers.expr.startswith(f"label_replace((bottomk({TIE_ROOM * 50}, ")


def test_check_names_record_their_first_names_without_a_count(catalog: Catalog) -> None:
    rules = {rule.record: rule for rule in rule_set(catalog, "5m", TableLimits(7, 3)).rules}
    names = rules["summary:check_providers_unavailable_names"]
    assert f"(topk({TIE_ROOM * 7}, " in names.expr
    assert names.promql not in {rule.counts for rule in rules.values()}


def test_other_limits_of_rows_are_other_rules(catalog: Catalog) -> None:
    shipped = {rule.record: rule.fingerprint for rule in rule_set(catalog, "5m").rules}
    fewer = {
        rule.record: rule.fingerprint for rule in rule_set(catalog, "5m", TableLimits(50, 5)).rules
    }
    changed = {record for record in shipped if shipped[record] != fewer[record]}
    assert changed == {
        record for record in shipped if record.startswith("summary:models_by_model")
    } - {"summary:models_by_model:count"}


def test_every_evaluation_records_one_series_without_a_window_beside_the_answer(
    catalog: Catalog,
) -> None:
    [rule] = [r for r in rule_set(catalog, "5m").rules if r.record == "summary:http_in_progress"]
    # A plain `or`: VictoriaMetrics would fill what a comparison dropped with `or on ()`.
    assert rule.expr == f'label_replace(({rule.promql}), "window", "5m", "", "") or vector(0)'


def test_counts_record_zero_only_while_a_metric_they_read_exists(catalog: Catalog) -> None:
    [rule] = [r for r in rule_set(catalog, "5m").rules if r.record == "summary:http_total_requests"]
    present = 'group({__name__=~"fastapi_requests_total"})'
    assert f"or on () (vector(0) and on () {present})" in rule.expr


def test_the_selector_reaches_every_rule_its_label_and_its_fingerprints() -> None:
    plain = rule_set(load_catalog(), "5m")
    selected = rule_set(load_catalog(selector='job="gatewayz-api-production"'), "5m")
    assert all('job="gatewayz-api-production"' in rule.expr for rule in selected.rules)
    [group] = [selected.group()]
    assert all(
        rule["labels"]["selector"] == 'job="gatewayz-api-production"' for rule in group["rules"]
    )
    assert all("selector" not in rule["labels"] for rule in plain.group()["rules"])
    assert not {r.fingerprint for r in plain.rules} & {r.fingerprint for r in selected.rules}
    assert group["name"] == 'summary-exporter-5m{job="gatewayz-api-production"}'


def test_window_is_canonical_in_queries_labels_and_group_name(catalog: Catalog) -> None:
    group = rule_set(catalog, "90s").group()
    assert group["name"] == "summary-exporter-1m30s"
    assert all('"window", "1m30s"' in rule["expr"] for rule in group["rules"])
    assert all("$window" not in rule["expr"] for rule in group["rules"])


def test_rendered_text_is_the_yaml_of_one_group_with_a_header(catalog: Catalog) -> None:
    text = render_rules(catalog, "5m")
    assert text.startswith("# Recording rules generated by summary-exporter")
    assert yaml.safe_load(text) == {"groups": [rule_set(catalog, "5m").group()]}
    assert yaml.safe_load(text)["groups"][0]["interval"] == DEFAULT_INTERVAL
    # One line per expression: long PromQL is not folded.
    assert all(len(line.split("expr: ")) == 2 for line in text.splitlines() if "expr:" in line)


def test_the_command_prints_the_rules_of_the_built_in_catalog() -> None:
    result = run_command("rules")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {"groups": [rule_set(load_catalog(), "5m").group()]}


def test_the_command_records_the_rows_of_the_exporters_limits() -> None:
    result = run_command("rules", env={"EXPORTER_MAX_ENTITIES": "20", "EXPORTER_TOP_MODELS": "4"})
    assert result.returncode == 0, result.stderr
    group = rule_set(load_catalog(), "5m", TableLimits(20, 4)).group()
    assert yaml.safe_load(result.stdout) == {"groups": [group]}
    assert "EXPORTER_MAX_ENTITIES=20" in result.stdout


def test_the_command_sets_the_evaluation_interval_and_names_it_in_the_header() -> None:
    result = run_command("rules", "--interval", "15000ms")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["groups"][0]["interval"] == "15s"
    assert "summary-exporter rules --window 5m --interval 15s" in result.stdout
    bad = run_command("rules", "--interval", "often")
    assert bad.returncode == 2
    assert "often" in bad.stderr


def test_the_command_takes_the_selector_from_the_environment_and_the_option_first() -> None:
    from_env = run_command("rules", env={"EXPORTER_SELECTOR": 'job="staging"'})
    assert 'job="staging"' in from_env.stdout
    option = run_command("rules", "--selector", "job='prod'", env={"EXPORTER_SELECTOR": 'job="x"'})
    assert 'job="prod"' in option.stdout
    assert 'job="x"' not in option.stdout
    bad = run_command("rules", env={"EXPORTER_SELECTOR": "job=prod"})
    assert bad.returncode == 2
    assert bad.stderr.startswith(
        "summary-exporter: invalid settings: EXPORTER_SELECTOR: expected a quoted string"
    )


def test_the_command_takes_the_window_from_the_environment_and_the_option_first() -> None:
    from_env = run_command("rules", env={"EXPORTER_WINDOW": "2h"})
    assert "[2h]" in from_env.stdout
    option = run_command("rules", "--window", "10m", env={"EXPORTER_WINDOW": "2h"})
    assert "[10m]" in option.stdout
    assert "[2h]" not in option.stdout


def test_an_invalid_window_setting_exits_2_naming_its_variable() -> None:
    result = run_command("rules", env={"EXPORTER_WINDOW": "5x"})
    assert result.returncode == 2
    assert "invalid settings: EXPORTER_WINDOW: '5x' is not a Prometheus duration" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("window", ["5x", "0s", "m5"])
def test_an_invalid_window_exits_2_naming_it(window: str) -> None:
    result = run_command("rules", "--window", window)
    assert result.returncode == 2
    assert "invalid window" in result.stderr
    assert result.stdout == ""


def test_an_invalid_catalog_exits_2_naming_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.yaml"
    broken.write_text("domains: {}\n")
    result = run_command("rules", "--catalog", str(broken))
    assert result.returncode == 2
    assert str(broken) in result.stderr
    missing = run_command("rules", env={"EXPORTER_CATALOG": str(tmp_path / "missing.yaml")})
    assert missing.returncode == 2
    assert "missing.yaml" in missing.stderr
