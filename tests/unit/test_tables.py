"""The table field kind: its catalog schema, how its answers become ordered rows, and its gauges."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml
from prometheus_client import generate_latest

from exporter.catalog import Catalog, FieldSpec, Kind, parse_catalog
from exporter.collector import SummaryCollector
from exporter.errors import CatalogError, QueryRejected
from exporter.prometheus import QueryResult, Sample
from exporter.refresher import Evaluator, Refresher
from exporter.settings import TableLimits
from exporter.snapshot import Existence, FieldValue, Snapshot, carry_over, explain, shape_table
from tests.conftest import LIMITS
from tests.unit.test_collector import registry_with

AT = 1_767_227_400.0
EXISTING = Existence({"attempts_total": 4, "calls_seconds_sum": 4, "breaker_state": 2}, "1h")


def provider_table(**overrides: Any) -> dict[str, Any]:
    table: dict[str, Any] = {
        "query": "score",
        "kind": "table",
        "label": "provider",
        "order": "ascending",
        "unit": "score",
        "help": "Providers, worst first.",
        "no_series_means_zero": True,
        "columns": {
            "requests": {
                "query": "round(sum by (provider) (increase(attempts_total[$window])))",
                "kind": "integer",
                "unit": "count",
                "help": "Attempts.",
                "no_series_means_zero": True,
            },
            "response_ms": {
                "query": "1000 * sum by (provider) (rate(calls_seconds_sum[$window]))",
                "kind": "number",
                "unit": "ms",
                "help": "Mean call.",
                "when_empty": "no calls",
            },
            "breaker": {
                "query": "breaker_state == 1",
                "kind": "label",
                "label": "state",
                "help": "The breaker.",
            },
        },
    }
    table.update(overrides)
    return table


def catalog_with(**table: Any) -> Catalog:
    document = {"domains": {"providers": {"fields": {"by_provider": provider_table(**table)}}}}
    return parse_catalog(yaml.safe_dump(document, sort_keys=False), "mine.yaml")


def catalog_problem(**table: Any) -> str:
    with pytest.raises(CatalogError) as caught:
        catalog_with(**table)
    return str(caught.value)


def spec_of(catalog: Catalog) -> FieldSpec:
    spec = catalog.field("providers.by_provider")
    assert spec is not None
    return spec


def answer(*series: tuple[dict[str, str], float]) -> QueryResult:
    """An answer as the client parses one: every value a float."""
    return QueryResult(tuple(Sample(labels, float(value)) for labels, value in series))


def rows(*scores: tuple[str, float]) -> QueryResult:
    return answer(*(({"provider": name}, score) for name, score in scores))


def entities(shaped: FieldValue) -> list[str]:
    """The rows' providers, in order."""
    assert isinstance(shaped.value, list)
    return [str(row["provider"]) for row in shaped.value if isinstance(row, dict)]


def columns(
    requests: QueryResult | None = None,
    response: QueryResult | None = None,
    breaker: QueryResult | None = None,
) -> dict[str, QueryResult | Any]:
    return {
        "requests": requests or answer(),
        "response_ms": response or answer(),
        "breaker": breaker or answer(),
    }


def table(
    row_answer: QueryResult,
    column_answers: dict[str, Any] | None = None,
    limits: TableLimits = LIMITS,
    existence: Existence = EXISTING,
    **overrides: Any,
) -> FieldValue:
    spec = spec_of(catalog_with(**overrides))
    return shape_table(
        spec, row_answer, column_answers or columns(), AT, existence=existence, limits=limits
    )


# The catalog schema.


def test_a_table_is_rows_of_named_columns_each_one_query() -> None:
    spec = spec_of(catalog_with())
    assert spec.kind is Kind.TABLE
    assert list(spec.columns) == ["requests", "response_ms", "breaker"]
    assert spec.columns["requests"].render("5m") == (
        "round(sum by (provider) (increase(attempts_total[5m])))"
    )
    assert spec.sources() == ("score", "attempts_total", "calls_seconds_sum", "breaker_state")


def test_each_column_has_its_gauge_in_base_units_with_the_entity_as_label() -> None:
    spec = spec_of(catalog_with())
    assert spec.gauge_names("providers", "by_provider") == [
        "summary_providers_by_provider_requests",
        "summary_providers_by_provider_response_seconds",
        "summary_providers_by_provider_breaker",
    ]
    assert spec.columns["response_ms"].gauge_factor == 0.001


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"label": None}, "a table needs `label` (the entity of a row), `order` and `columns`"),
        ({"order": None}, "a table needs `label` (the entity of a row), `order` and `columns`"),
        ({"columns": {}}, "a table needs `label` (the entity of a row), `order` and `columns`"),
        ({"order": "random"}, "Input should be 'ascending' or 'descending'"),
        ({"limit": 0}, "Input should be greater than 0"),
        ({"limit": "top_providers"}, "Input should be 'top_models'"),
        ({"gauge": "providers"}, "`gauge` and `denominator` do not apply to a table"),
        (
            {"lower_bound": {"when": "x", "reason": "y"}},
            "`lower_bound` applies to numbers, not to a list",
        ),
        (
            {
                "columns": {
                    "provider": {"query": "x", "kind": "integer", "unit": "count", "help": "h"}
                }
            },
            "column 'provider' would hide the row's provider",
        ),
        (
            {"columns": {"state": {"query": "x", "kind": "label", "help": "h"}}},
            "a label column needs `label`: the label holding its value",
        ),
        (
            {"columns": {"n": {"query": "x", "kind": "number", "help": "h"}}},
            "a numeric column needs `unit`",
        ),
        (
            {
                "columns": {
                    "n": {"query": "x[$windw]", "kind": "integer", "unit": "count", "help": "h"}
                }
            },
            "query uses unknown placeholders ['windw']",
        ),
    ],
)
def test_an_invalid_table_is_refused_naming_what_is_wrong(
    overrides: dict[str, Any], problem: str
) -> None:
    document = provider_table(**overrides)
    document = {key: value for key, value in document.items() if value is not None}
    text = yaml.safe_dump(
        {"domains": {"providers": {"fields": {"by_provider": document}}}}, sort_keys=False
    )
    with pytest.raises(CatalogError) as caught:
        parse_catalog(text, "mine.yaml")
    assert "domains.providers.fields.by_provider" in str(caught.value)
    assert problem in str(caught.value)


def test_columns_order_and_limit_belong_to_tables_only() -> None:
    document = {
        "domains": {
            "web": {
                "fields": {
                    "hits": {
                        "query": "sum(hits)", "kind": "integer", "unit": "count", "help": "h",
                        "order": "ascending",
                    }
                }
            }
        }
    }  # fmt: skip
    with pytest.raises(CatalogError, match="apply to kind table only"):
        parse_catalog(yaml.safe_dump(document, sort_keys=False), "mine.yaml")


def test_a_check_cannot_judge_a_table() -> None:
    document = {
        "domains": {"providers": {"fields": {"by_provider": provider_table()}}},
        "checks": {
            "worst": {"help": "h", "field": "providers.by_provider", "degraded": {"above": 1}}
        },
    }
    with pytest.raises(CatalogError, match=r"providers\.by_provider is a list, not a number"):
        parse_catalog(yaml.safe_dump(document, sort_keys=False), "mine.yaml")


def test_the_selector_is_written_into_every_column() -> None:
    document = {"domains": {"providers": {"fields": {"by_provider": provider_table(
        query="score{$selector}",
        columns={"n": {"query": "sum by (provider) (x{a=\"b\",$selector})", "kind": "integer",
                       "unit": "count", "help": "h"}},
    )}}}}  # fmt: skip
    catalog = parse_catalog(
        yaml.safe_dump(document, sort_keys=False), "mine.yaml", selector='env="prod"'
    )
    spec = spec_of(catalog)
    assert spec.render("5m") == 'score{env="prod"}'
    assert spec.columns["n"].render("5m") == 'sum by (provider) (x{a="b",env="prod"})'


# Rows, their order and their cut.


def test_rows_follow_the_order_of_their_values_ties_by_name() -> None:
    shaped = table(rows(("together", 100), ("groq", 0), ("anthropic", 100), ("openrouter", 75)))
    assert entities(shaped) == [
        "groq", "openrouter", "anthropic", "together",
    ]  # fmt: skip
    descending = table(rows(("b", 1), ("a", 3), ("c", 3)), order="descending")
    assert entities(descending) == [
        "a", "c", "b",
    ]  # fmt: skip


def test_a_row_without_a_finite_value_is_left_out() -> None:
    shaped = table(rows(("a", 1), ("b", math.nan)))
    assert entities(shaped) == ["a"]


@pytest.mark.parametrize(
    ("limit", "limits", "kept", "said_by"),
    [
        (None, TableLimits(max_entities=2, top_models=10), 2, "EXPORTER_MAX_ENTITIES"),
        ("top_models", TableLimits(max_entities=50, top_models=3), 3, "EXPORTER_TOP_MODELS"),
        ("top_models", TableLimits(max_entities=2, top_models=3), 2, "EXPORTER_MAX_ENTITIES"),
        (4, TableLimits(max_entities=50, top_models=3), 4, "the catalog's limit"),
    ],
)
def test_a_table_keeps_its_first_rows_up_to_its_limit_and_says_so(
    limit: Any, limits: TableLimits, kept: int, said_by: str
) -> None:
    many = rows(*((f"p{index}", float(index)) for index in range(6)))
    shaped = table(many, limits=limits, limit=limit)
    names = entities(shaped)
    assert names == [f"p{index}" for index in range(kept)]
    assert shaped.cut is not None
    assert shaped.cut.document() == {"rows": kept, "of": 6, "limit": said_by}


def test_a_table_within_its_limit_has_no_cut() -> None:
    assert table(rows(("a", 1))).cut is None


def test_no_rows_is_an_empty_table_when_its_metrics_exist_and_null_when_they_do_not() -> None:
    assert table(rows()).value == []
    missing = table(rows(), existence=Existence({}, "1h"))
    assert missing.value is None
    assert missing.reason is not None
    assert missing.reason.startswith("no series of score, attempts_total, calls_seconds_sum or")


# Cells.


def test_each_cell_is_its_columns_series_for_the_rows_entity() -> None:
    shaped = table(
        rows(("groq", 0), ("openai", 90)),
        columns(
            requests=answer(({"provider": "openai"}, 120), ({"provider": "groq"}, 40)),
            response=answer(({"provider": "groq"}, 10_000.5), ({"provider": "other"}, 1)),
            breaker=answer(({"provider": "groq", "state": "open"}, 1)),
        ),
    )
    assert shaped.value == [
        {"provider": "groq", "requests": 40, "response_ms": 10_000.5, "breaker": "open"},
        {"provider": "openai", "requests": 120, "response_ms": None, "breaker": None},
    ]
    assert shaped.cells == (
        ("openai", "response_ms", "no calls"),
        ("openai", "breaker", "the query returned no series for this row"),
    )


def test_a_missing_count_is_zero_only_while_its_metric_exists() -> None:
    existing = table(rows(("a", 1)))
    assert existing.value == [
        {"provider": "a", "requests": 0, "response_ms": None, "breaker": None}
    ]
    without = table(rows(("a", 1)), existence=Existence({"score": 1}, "1h"))
    assert without.value == [
        {"provider": "a", "requests": None, "response_ms": None, "breaker": None}
    ]
    assert without.cells[0] == (
        "a",
        "requests",
        "attempts_total has no series in the upstream over the last 1h"
        " (the gateway does not write it, or is down)",
    )


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "Prometheus returned NaN"),
        (math.inf, "Prometheus returned +Inf"),
        (2.5, "Prometheus returned 2.5 for a count (wrap the query in round())"),
    ],
)
def test_a_cell_prometheus_cannot_give_as_a_number_is_null_with_why(
    value: float, reason: str
) -> None:
    shaped = table(rows(("a", 1)), columns(requests=answer(({"provider": "a"}, value))))
    assert shaped.cells[0] == ("a", "requests", reason)


def test_several_series_for_one_cell_are_null_not_summed() -> None:
    requests = answer(({"provider": "a", "model": "x"}, 1), ({"provider": "a", "model": "y"}, 2))
    shaped = table(rows(("a", 1)), columns(requests=requests))
    assert shaped.cells[0] == (
        "a", "requests", "2 series for this row where one was expected (aggregate it)",
    )  # fmt: skip


def test_a_failed_query_fails_the_whole_table_and_the_last_one_is_kept_stale() -> None:
    error = QueryRejected("http://prom", "bad_data", "parse error", status=400)
    failed = table(rows(("a", 1)), columns() | {"breaker": error})
    assert (failed.value, failed.error) == (None, error)
    good = table(rows(("a", 1)))
    catalog = catalog_with()
    before = Snapshot(AT - 15, "5m", {("providers", "by_provider"): good}, "u", catalog)
    now = Snapshot(AT, "5m", {("providers", "by_provider"): failed}, "u", catalog)
    kept = carry_over(before, now, max_staleness=150).fields[("providers", "by_provider")]
    assert (kept.value, kept.stale) == (good.value, True)


# The document, explain and gauges.


def snapshot_with(shaped: FieldValue, catalog: Catalog | None = None) -> Snapshot:
    """A snapshot of `catalog` (the test's table by default) with the table `shaped`."""
    fields = {("providers", "by_provider"): shaped}
    return Snapshot(AT, "5m", fields, "http://prom", catalog or catalog_with())


def test_the_document_names_a_null_cell_by_its_row_and_says_a_cut() -> None:
    shaped = table(rows(("a", 1), ("b", 2), ("c", 3)), limits=TableLimits(2, 10))
    document = snapshot_with(shaped).document(AT)
    assert document["metrics"]["providers"]["by_provider"][0]["provider"] == "a"
    assert document["nulls"]["providers.by_provider[a].response_ms"] == "no calls"
    assert document["cuts"] == {
        "providers.by_provider": {"rows": 2, "of": 3, "limit": "EXPORTER_MAX_ENTITIES"}
    }


def test_explain_gives_each_columns_promql_unit_and_help() -> None:
    catalog = catalog_with()
    snapshot = snapshot_with(table(rows(("a", 1))), catalog)
    explained = explain(catalog, snapshot)["providers.by_provider"]
    assert (explained["promql"], explained["key"], explained["order"]) == (
        "score", "provider", "ascending",
    )  # fmt: skip
    assert explained["columns"]["response_ms"] == {
        "promql": "1000 * sum by (provider) (rate(calls_seconds_sum[5m]))",
        "kind": "number",
        "unit": "ms",
        "help": "Mean call.",
    }
    assert explained["columns"]["breaker"]["unit"] is None


def test_each_column_is_a_gauge_family_labelled_by_the_entity_in_base_units(
    prometheus_client: Any,
) -> None:
    catalog = catalog_with()
    shaped = table(
        rows(("groq", 0), ("openai", 90)),
        columns(
            requests=answer(({"provider": "openai"}, 120), ({"provider": "groq"}, 40)),
            response=answer(({"provider": "groq"}, 1500)),
            breaker=answer(({"provider": "groq", "state": "open"}, 1)),
        ),
    )
    refresher = Refresher(
        Evaluator(catalog, prometheus_client, max_concurrency=1, limits=LIMITS, max_bytes=1 << 20),
        window="5m",
        interval=15,
        max_staleness=150,
    )
    refresher.current = snapshot_with(shaped, catalog)
    text = generate_latest(registry_with(SummaryCollector(catalog, refresher))).decode()
    assert 'summary_providers_by_provider_requests{provider="groq"} 40.0\n' in text
    assert 'summary_providers_by_provider_requests{provider="openai"} 120.0\n' in text
    assert 'summary_providers_by_provider_response_seconds{provider="groq"} 1.5\n' in text
    # A null cell has no sample; a label column is the state as a label, valued 1.
    assert 'summary_providers_by_provider_response_seconds{provider="openai"}' not in text
    assert 'summary_providers_by_provider_breaker{breaker="open",provider="groq"} 1.0\n' in text
    assert "# HELP summary_providers_by_provider_requests Providers, worst first. Column" in text
