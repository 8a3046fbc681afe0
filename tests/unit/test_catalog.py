"""The query catalog: the built-in one, and how a user catalog file is validated."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from exporter.catalog import (
    Catalog,
    FieldSpec,
    Kind,
    Unit,
    load_catalog,
    metric_names,
    parse_catalog,
)
from exporter.errors import CatalogError

BUILTIN = load_catalog()
BUILTIN_FIELDS = BUILTIN.fields()

# A selector: a metric name not followed by "(" (that would be a function), with its matchers.
# The possessive `*+` keeps "sum(" from matching as the metric "su".
_SELECTOR = re.compile(r"(?<![\w:$])([a-zA-Z_:][\w:]*+)\s*(\{[^}]*\})?(?!\s*\()")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "group_left", "group_right"})

# The gateway's legacy duplicates: never to be read (nor their histogram series).
_LEGACY = re.compile(r"http_requests_total|http_request_duration_seconds(?:_sum|_count|_bucket)?")

# The matchers that keep the gateway's synthetic self-test series out, by metric family.
_SYNTHETIC_EXCLUSIONS: dict[str, tuple[str, ...]] = {
    "fastapi_": ('path!="/api/metrics/test"',),
    "model_inference_": ('provider!="test"', 'model!="test-model"'),
    "tokens_used_total": ('provider!="test"', 'model!="test-model"'),
    "credits_used_total": ('provider!="test"', 'model!="test-model"'),
    "provider_": ('provider!="test"',),
    "circuit_breaker_": ('provider!="test"',),
    "time_to_first_chunk_": ('provider!="test"', 'model!="test-model"'),
    "stream_chunks_": ('provider!="test"', 'model!="test-model"'),
    "gatewayz_default_pricing_": ('model!="test-model"',),
}
# The self-test's own answers on its path, selected to be subtracted (`unless`) from all
# requests: a 4xx there is a real request and stays counted.
_SELF_TEST_ANSWERS = '{path="/api/metrics/test",status_code!~"4.."}'
# The gateway domain reads every series of the requests counter: liveness is about samples
# arriving at all, synthetic or not.
_LIVENESS_DOMAIN = "gateway"


def selectors(query: str) -> list[tuple[str, str]]:
    """(metric name, matchers between braces or "") of every series selector of a query."""
    stripped = _GROUPING.sub(" ", query)
    return [
        (name, (matchers or "").replace(" ", ""))
        for name, matchers in _SELECTOR.findall(stripped)
        if name not in _KEYWORDS
    ]


def required_exclusions(metric: str) -> tuple[str, ...]:
    for family, matchers in _SYNTHETIC_EXCLUSIONS.items():
        if metric.startswith(family):
            return matchers
    return ()


def labelled_selectors() -> list[Any]:
    return [
        pytest.param(metric, matchers, id=f"{domain}.{name}:{metric}")
        for domain, name, spec in BUILTIN_FIELDS
        if domain != _LIVENESS_DOMAIN
        for query in spec.templates()
        for metric, matchers in selectors(query)
        if required_exclusions(metric)
    ] + [
        pytest.param(metric, matchers, id=f"checks.{name}:{metric}")
        for name, check in BUILTIN.checks.items()
        if check.names is not None
        for metric, matchers in selectors(check.names.query)
        if required_exclusions(metric)
    ]


def field_doc(**overrides: Any) -> dict[str, Any]:
    field: dict[str, Any] = {
        "query": "round(sum(increase(hits_total[$window])))",
        "kind": "integer",
        "unit": "count",
        "help": "Hits in the window.",
    }
    field.update(overrides)
    return field


def catalog_doc(**fields: dict[str, Any]) -> dict[str, Any]:
    """A catalog with one domain `web` holding `fields` (one valid field `hits` by default)."""
    return {"domains": {"web": {"help": "Web.", "fields": fields or {"hits": field_doc()}}}}


def write_catalog(tmp_path: Path, document: dict[str, Any] | str) -> Path:
    path = tmp_path / "my-catalog.yaml"
    text = document if isinstance(document, str) else yaml.safe_dump(document, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def catalog_error(path: Path) -> str:
    with pytest.raises(CatalogError) as caught:
        load_catalog(path)
    return str(caught.value)


# The built-in catalog.


def test_builtin_catalog_has_the_gateway_and_the_five_domains_in_order() -> None:
    assert list(BUILTIN.domains) == [
        "gateway", "http", "models", "providers", "database", "business",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("domain", "fields"),
    [
        ("gateway", ["targets_up", "targets_total", "newest_sample_age_ms", "event_loop_lag_ms"]),
        (
            "http",
            [
                "total_requests",
                "request_rate_per_minute",
                "error_rate",
                "avg_latency_ms",
                "p95_latency_ms",
                "in_progress",
                "rate_limited_requests",
            ],
        ),
        (
            "models",
            [
                "total_inference_requests",
                "total_models",
                "top_models",
                "avg_requests_per_model",
                "tokens_used_total",
                "credits_used_total",
                "avg_inference_latency_ms",
                "inference_error_rate",
                "ttfc_p95_ms",
                "stream_chunks_dropped",
                "by_model",
            ],
        ),
        (
            "providers",
            [
                "total_providers",
                "healthy_providers",
                "degraded_providers",
                "unavailable_providers",
                "avg_health_score",
                "avg_error_rate",
                "avg_response_time_ms",
                "open_circuit_breakers",
                "rejected_requests",
                "slow_requests",
                "by_provider",
            ],
        ),
        (
            "database",
            [
                "total_queries",
                "avg_query_latency_ms",
                "cache_hit_rate",
                "pool_utilization",
                "pool_errors",
                "redis_up",
            ],
        ),
        (
            "business",
            [
                "active_api_keys",
                "active_subscriptions",
                "active_trials",
                "total_tokens_used",
                "total_credits_used",
                "credits_deducted_usd",
                "missed_deductions_usd",
                "refunds_usd",
                "payment_mismatches",
                "default_priced_requests",
            ],
        ),
    ],
)
def test_builtin_domain_has_exactly_these_fields(domain: str, fields: list[str]) -> None:
    assert list(BUILTIN.domains[domain].fields) == fields


def test_selector_extraction_finds_metrics_and_their_matchers() -> None:
    query = BUILTIN.domains["http"].fields["error_rate"].query

    assert selectors(query) == [
        ("fastapi_requests_total", '{path!="/api/metrics/test",status_code=~"5.."}'),
        ("fastapi_requests_total", ""),
        ("fastapi_requests_total", _SELF_TEST_ANSWERS),
    ]


def test_selector_extraction_ignores_grouping_labels_and_functions() -> None:
    query = BUILTIN.domains["http"].fields["p95_latency_ms"].query

    assert [metric for metric, _ in selectors(query)] == [
        "fastapi_requests_duration_seconds_bucket"
    ]


@pytest.mark.parametrize(
    "spec", [pytest.param(spec, id=f"{d}.{n}") for d, n, spec in BUILTIN_FIELDS]
)
def test_builtin_query_reads_no_legacy_duplicate_metric(spec: FieldSpec) -> None:
    metrics = [metric for metric, _ in selectors(spec.query)]

    assert metrics, "every built-in query reads at least one metric"
    assert not [metric for metric in metrics if _LEGACY.fullmatch(metric)]


@pytest.mark.parametrize(("metric", "matchers"), labelled_selectors())
def test_builtin_query_excludes_synthetic_series(metric: str, matchers: str) -> None:
    if metric == "fastapi_requests_total" and matchers in ("", _SELF_TEST_ANSWERS):
        return  # every request, less the self-test's answers: checked below
    for exclusion in required_exclusions(metric):
        assert exclusion in matchers


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(spec, id=f"{d}.{n}")
        for d, n, spec in BUILTIN_FIELDS
        if any(m == ("fastapi_requests_total", "") for m in selectors(spec.query))
        and d != _LIVENESS_DOMAIN
    ],
)
def test_builtin_request_counts_subtract_the_self_tests_answers(spec: FieldSpec) -> None:
    query = " ".join(spec.query.split())

    assert f"unless increase(fastapi_requests_total{_SELF_TEST_ANSWERS}" in query or (
        f"unless rate(fastapi_requests_total{_SELF_TEST_ANSWERS}" in query
    )


@pytest.mark.parametrize(
    "template",
    [
        pytest.param(template, id=f"{d}.{n}")
        for d, n, spec in load_catalog(selector='env="prod"').fields()
        for template in spec.templates()
    ]
    + [
        pytest.param(check.query, id=f"checks.{name}")
        for name, check in load_catalog(selector='env="prod"').checks.items()
        if check.query
    ]
    + [
        pytest.param(check.names.query, id=f"checks.{name}.names")
        for name, check in load_catalog(selector='env="prod"').checks.items()
        if check.names
    ],
)
def test_every_builtin_selector_applies_the_configured_selector(template: str) -> None:
    bare = re.findall(r"(?<![\w:])\{[^}]*\}", template)
    named = [
        (name, match or "")
        for name in metric_names(template)
        for match in re.findall(rf"(?<![\w:]){name}\s*(\{{[^}}]*\}})?", template)
    ]

    assert named
    for metric, matchers in named + [("", matchers) for matchers in bare]:
        assert 'env="prod"' in matchers, metric or matchers


def test_without_a_selector_no_empty_matcher_or_stray_comma_is_left() -> None:
    for _, _, spec in BUILTIN_FIELDS:
        for template in spec.templates():
            assert ",}" not in template
            assert "{," not in template
            assert "{}" not in template


def test_every_labelled_metric_family_is_checked_for_synthetic_series() -> None:
    read = {metric for _, _, spec in BUILTIN_FIELDS for metric, _ in selectors(spec.query)}

    for family in _SYNTHETIC_EXCLUSIONS:
        assert any(metric.startswith(family) for metric in read), family


@pytest.mark.parametrize(
    ("domain", "field", "gauge", "factor"),
    [
        ("http", "avg_latency_ms", "summary_http_avg_latency_seconds", 0.001),
        ("http", "error_rate", "summary_http_error_ratio", 0.01),
        ("http", "total_requests", "summary_http_total_requests", 1.0),
        ("providers", "healthy_providers", "summary_providers_healthy_providers", 1.0),
        ("providers", "avg_error_rate", "summary_providers_avg_error_ratio", 0.01),
        ("models", "top_models", "summary_models_requests", 1.0),
        ("database", "cache_hit_rate", "summary_database_cache_hit_ratio", 0.01),
        ("database", "avg_query_latency_ms", "summary_database_avg_query_latency_seconds", 0.001),
        ("gateway", "event_loop_lag_ms", "summary_gateway_event_loop_lag_seconds", 0.001),
        ("models", "inference_error_rate", "summary_models_inference_error_ratio", 0.01),
        ("models", "ttfc_p95_ms", "summary_models_ttfc_p95_seconds", 0.001),
        ("database", "pool_utilization", "summary_database_pool_utilization_ratio", 0.01),
        ("database", "redis_up", "summary_database_redis_up", 1.0),
        ("business", "missed_deductions_usd", "summary_business_missed_deductions_usd", 1.0),
    ],
)
def test_builtin_gauge_name_and_factor_to_base_unit(
    domain: str, field: str, gauge: str, factor: float
) -> None:
    spec = BUILTIN.domains[domain].fields[field]

    assert spec.gauge_name(domain, field) == gauge
    assert spec.gauge_factor == factor


@pytest.mark.parametrize(
    ("field", "unit", "gauge"),
    [
        ("tokens_used_total", "tokens", "summary_models_tokens_used"),
        ("credits_used_total", "credits", "summary_models_credits_used"),
        ("wait_total_ms", "ms", "summary_models_wait_total_seconds"),
    ],
)
def test_a_gauge_never_ends_in_total_which_belongs_to_counters(
    field: str, unit: str, gauge: str
) -> None:
    spec = FieldSpec.model_validate(field_doc(unit=unit))

    assert spec.gauge_name("models", field) == gauge


def test_no_builtin_gauge_ends_in_a_suffix_of_another_metric_type() -> None:
    for domain, name, spec in BUILTIN_FIELDS:
        gauge = spec.gauge_name(domain, name)
        assert not gauge.endswith(("_total", "_created", "_bucket", "_count", "_sum")), gauge


def test_builtin_gauge_names_are_unique() -> None:
    names = [spec.gauge_name(domain, name) for domain, name, spec in BUILTIN_FIELDS]

    assert len(names) == len(set(names))


def test_top_models_lists_the_model_label() -> None:
    spec = BUILTIN.domains["models"].fields["top_models"]

    assert (spec.kind, spec.label, spec.unit) == (Kind.LABELS, "model", Unit.COUNT)


def test_render_substitutes_the_window() -> None:
    spec = BUILTIN.domains["models"].fields["total_inference_requests"]

    assert spec.render("1h30m") == (
        "round(sum(increase(model_inference_requests_total"
        '{provider!="test",model!="test-model"}[1h30m])))'
    )


@pytest.mark.parametrize(("written", "canonical"), [("7d", "1w"), ("90m", "1h30m"), ("300s", "5m")])
def test_render_writes_the_window_in_its_canonical_spelling(written: str, canonical: str) -> None:
    spec = FieldSpec.model_validate(field_doc(query="sum(increase(x[$window]))"))

    assert spec.render(written) == f"sum(increase(x[{canonical}]))"


@pytest.mark.parametrize("window", ["5m])) or vector(1", "", "5x"])
def test_render_refuses_a_window_that_is_not_a_duration(window: str) -> None:
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        BUILTIN.domains["http"].fields["total_requests"].render(window)


@pytest.mark.parametrize(
    ("query", "windowed"),
    [
        ("round(sum(increase(requests_total[$window])))", True),
        ("max_over_time(x[${window}])", True),
        ("sum(fastapi_requests_in_progress)", False),
        ("sum(active_api_keys) + $$5", False),
    ],
)
def test_a_field_is_windowed_when_its_query_uses_the_window(query: str, windowed: bool) -> None:
    assert FieldSpec.model_validate(field_doc(query=query)).windowed is windowed


@pytest.mark.parametrize(
    "spec", [pytest.param(spec, id=f"{d}.{n}") for d, n, spec in BUILTIN_FIELDS]
)
def test_rendered_builtin_query_has_no_placeholder_left(spec: FieldSpec) -> None:
    assert "$" not in spec.render("5m")


def test_render_turns_double_dollar_into_a_literal_dollar_and_nothing_else() -> None:
    spec = FieldSpec.model_validate(
        field_doc(query='sum(rate(hits_total{path=~"/api/.*$$"}[$window])) or ${window}')
    )

    assert spec.render("10m") == 'sum(rate(hits_total{path=~"/api/.*$"}[10m])) or 10m'


# A user catalog file.


def test_user_catalog_file_loads(tmp_path: Path) -> None:
    path = write_catalog(
        tmp_path,
        catalog_doc(
            hits=field_doc(),
            latency_ms=field_doc(
                query="1000 * avg(latency_seconds)",
                kind="number",
                unit="ms",
                denominator="hits",
                when_zero_denominator="no hits (0/0)",
            ),
        ),
    )

    catalog = load_catalog(path)

    assert isinstance(catalog, Catalog)
    assert [(domain, name) for domain, name, _ in catalog.fields()] == [
        ("web", "hits"),
        ("web", "latency_ms"),
    ]
    latency = catalog.domains["web"].fields["latency_ms"]
    assert latency.gauge_name("web", "latency_ms") == "summary_web_latency_seconds"
    assert latency.denominator == "hits"


@pytest.mark.parametrize(
    ("overrides", "location", "problem"),
    [
        pytest.param(
            {"bogus": 1},
            "domains.web.fields.hits.bogus",
            "Extra inputs are not permitted",
            id="unknown-key",
        ),
        pytest.param(
            {"query": None},
            "domains.web.fields.hits.query",
            "Field required",
            id="missing-query",
        ),
        pytest.param(
            {"kind": "float"},
            "domains.web.fields.hits.kind",
            "Input should be 'integer', 'number', 'labels' or 'table'",
            id="bad-kind",
        ),
        pytest.param(
            {"query": "sum(hits_total[$windw])"},
            "domains.web.fields.hits",
            "unknown placeholders ['windw']",
            id="misspelt-placeholder",
        ),
        pytest.param(
            {"query": 'hits_total{path=~"/a$"}'},
            "domains.web.fields.hits",
            "malformed '$' placeholder",
            id="lone-dollar",
        ),
        pytest.param(
            {"query": "sum(rate(hits_total[$window])"},
            "domains.web.fields.hits",
            "unbalanced brackets or quotes",
            id="unbalanced-brackets",
        ),
        pytest.param(
            {"query": 'hits_total{path="/a}'},
            "domains.web.fields.hits",
            "unbalanced brackets or quotes",
            id="unclosed-quote",
        ),
        pytest.param(
            {"kind": "labels", "gauge": "hits"},
            "domains.web.fields.hits",
            "a labels field needs `label`",
            id="labels-without-label",
        ),
        pytest.param(
            {"label": "model"},
            "domains.web.fields.hits",
            "`label` applies to kind labels and table only",
            id="label-on-integer",
        ),
        pytest.param(
            {"denominator": "requests", "when_zero_denominator": "0/0"},
            "domains.web",
            "hits: denominator 'requests' is not a field here",
            id="missing-denominator-field",
        ),
    ],
)
def test_invalid_field_is_reported_with_file_and_location(
    tmp_path: Path, overrides: dict[str, Any], location: str, problem: str
) -> None:
    field = {k: v for k, v in field_doc(**overrides).items() if v is not None}
    path = write_catalog(tmp_path, catalog_doc(hits=field))

    message = catalog_error(path)

    assert message.startswith(f"catalog {path}: {location}: ")
    assert problem in message


def test_invalid_domain_name_is_reported(tmp_path: Path) -> None:
    document = catalog_doc()
    document["domains"]["Web-2"] = copy.deepcopy(document["domains"]["web"])
    path = write_catalog(tmp_path, document)

    assert "domains.Web-2.[key]: String should match pattern" in catalog_error(path)


def test_several_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = write_catalog(
        tmp_path,
        catalog_doc(
            hits=field_doc(kind="float"),
            misses=field_doc(query="sum(misses_total[$windw])"),
            errors=field_doc(bogus=True),
        ),
    )

    message = catalog_error(path)

    assert "domains.web.fields.hits.kind:" in message
    assert "domains.web.fields.misses: Value error, query uses unknown placeholders" in message
    assert "domains.web.fields.errors.bogus: Extra inputs are not permitted" in message


def test_invalid_yaml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, "domains:\n  web: [\n")

    assert catalog_error(path).startswith(f"catalog {path}: not valid YAML: ")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just text\n"])
def test_yaml_that_is_not_a_mapping_is_rejected_at_top_level(tmp_path: Path, text: str) -> None:
    path = write_catalog(tmp_path, text)

    assert catalog_error(path).startswith(f"catalog {path}: (top level): ")


def test_domain_without_fields_is_rejected(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, {"domains": {"web": {"fields": {}}}})

    assert "domains.web.fields: Dictionary should have at least 1 item" in catalog_error(path)


def test_missing_file_is_reported_as_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    assert catalog_error(path) == f"catalog {path}: cannot read: No such file or directory"


def test_directory_is_reported_as_unreadable(tmp_path: Path) -> None:
    assert catalog_error(tmp_path) == f"catalog {tmp_path}: cannot read: Is a directory"


def test_file_that_is_not_utf8_is_reported_as_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("domains:\n  web:\n    help: caf\u00e9\n".encode("latin-1"))

    assert catalog_error(path).startswith(f"catalog {path}: ")


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(
            catalog_doc(x_ms=field_doc(unit="ms"), x_seconds=field_doc()), id="derived-name"
        ),
        pytest.param({"domains": {"exporter": {"fields": {"up": field_doc()}}}}, id="self-metric"),
    ],
)
def test_duplicate_gauge_names_are_rejected(tmp_path: Path, document: dict[str, Any]) -> None:
    path = write_catalog(tmp_path, document)

    assert "gauge" in catalog_error(path)


# Definitions, the selector and the lookback.


def test_definitions_are_written_into_queries_in_parentheses_and_may_use_earlier_ones() -> None:
    document = catalog_doc(
        hits=field_doc(query="round(sum($hits) / $hits_or_one)"),
    ) | {
        "definitions": {
            "hits": "increase(hits_total{$selector}[$window])",
            "hits_or_one": "sum($hits) or vector(1)",
        }
    }
    catalog = parse_catalog(yaml.safe_dump(document), "mine.yaml", selector='job="a"')

    assert catalog.domains["web"].fields["hits"].render("5m") == (
        'round(sum((increase(hits_total{job="a"}[5m]))) / '
        '(sum((increase(hits_total{job="a"}[5m]))) or vector(1)))'
    )


@pytest.mark.parametrize(
    ("definitions", "problem"),
    [
        pytest.param(
            {"b": "sum($a)", "a": "x"}, "b: uses ['a'], which are neither built in", id="later"
        ),
        pytest.param({"window": "x"}, "window: the name of a built-in placeholder", id="builtin"),
        pytest.param({"a": "sum(x"}, "a: malformed placeholder, brackets or quotes", id="broken"),
    ],
)
def test_a_definition_must_be_sound_and_use_only_earlier_ones(
    definitions: dict[str, str], problem: str
) -> None:
    document = catalog_doc() | {"definitions": definitions}
    with pytest.raises(CatalogError) as caught:
        parse_catalog(yaml.safe_dump(document, sort_keys=False), "mine.yaml")

    assert f"catalog mine.yaml: definitions: Value error, {problem}" in str(caught.value)


def test_a_field_may_use_only_built_in_placeholders_and_definitions() -> None:
    document = catalog_doc(hits=field_doc(query="sum($hitz)")) | {"definitions": {"hits": "x"}}
    with pytest.raises(CatalogError) as caught:
        parse_catalog(yaml.safe_dump(document), "mine.yaml")

    assert "domains.web.fields.hits: Value error, query uses unknown placeholders ['hitz']" in (
        str(caught.value)
    )
    assert "$hits, $lookback, $lookback_seconds, $selector, $window" in str(caught.value)


@pytest.mark.parametrize(
    ("template", "with_selector", "without"),
    [
        ("x{$selector}", 'x{env="p"}', "x"),
        ('x{a="b",$selector}', 'x{a="b",env="p"}', 'x{a="b"}'),
        ('x{$selector, a="b"}', 'x{env="p", a="b"}', 'x{a="b"}'),
        ("x{${selector}}[$window]", 'x{env="p"}[5m]', "x[5m]"),
        ('{a="b",$selector}', '{a="b",env="p"}', '{a="b"}'),
    ],
)
def test_the_selector_is_written_into_every_matcher_list_or_left_out_cleanly(
    template: str, with_selector: str, without: str
) -> None:
    document = catalog_doc(hits=field_doc(query=template))
    for selector, expected in (('env="p"', with_selector), ("", without)):
        catalog = parse_catalog(yaml.safe_dump(document), "mine.yaml", selector=selector)
        assert catalog.domains["web"].fields["hits"].render("5m") == expected


def test_the_lookback_is_a_duration_and_a_number_of_seconds() -> None:
    document = catalog_doc(hits=field_doc(query="x[$lookback] + $lookback_seconds")) | {
        "lookback": "90m"
    }
    catalog = parse_catalog(yaml.safe_dump(document), "mine.yaml")

    assert catalog.domains["web"].fields["hits"].render("5m") == "x[1h30m] + 5400"
    assert catalog.lookback_canonical == "1h30m"


def test_an_invalid_lookback_is_rejected() -> None:
    with pytest.raises(CatalogError, match=r"mine\.yaml: lookback: Value error, 'an hour' is not"):
        parse_catalog(yaml.safe_dump(catalog_doc() | {"lookback": "an hour"}), "mine.yaml")


def test_the_existence_question_counts_series_per_metric_under_the_selector() -> None:
    catalog = load_catalog(selector='job="a"')

    assert catalog.existence_query(("up", "x_total")) == (
        'count by (__name__) (last_over_time({__name__=~"up|x_total",job="a"}[1h]))'
    )
    assert load_catalog().existence_query(("up",), "2h") == (
        'count by (__name__) (last_over_time({__name__=~"up"}[2h]))'
    )


def test_over_a_range_a_count_is_zero_at_each_step_where_a_metric_it_reads_exists() -> None:
    catalog = load_catalog(selector='job="a"')
    spec = catalog.field("business.missed_deductions_usd")
    assert spec is not None
    assert catalog.range_query(spec, "5m") == (
        f"({spec.render('5m')}) or on () 0 * sum(count by (__name__) (last_over_time("
        '{__name__=~"gatewayz_missed_credit_deductions_usd_total|gatewayz_credit_deduction_total"'
        ',job="a"}[1h])))'
    )


@pytest.mark.parametrize(
    "reference", ["http.error_rate", "http.p95_latency_ms", "models.top_models"]
)
def test_over_a_range_any_other_field_is_its_own_query(reference: str) -> None:
    spec = BUILTIN.field(reference)
    assert spec is not None
    assert BUILTIN.range_query(spec, "5m") == spec.render("5m")


@pytest.mark.parametrize(
    ("promql", "names"),
    [
        ('sum by (le, path) (rate(a_bucket{le!="+Inf"}[5m]))', ("a_bucket",)),
        ("up and on (job, instance) group by (job) (b)", ("up", "b")),
        ('label_replace(c{x="y{1}"}, "n", "$1", "__name__", "(.+)")[5m:1m]', ("c",)),
        ('{provider="test"} or d offset 5m > bool 1e3 * -Inf', ("d",)),
        ("topk(3, e) + vector(time()) + x:recorded:rate5m", ("e", "x:recorded:rate5m")),
        ("f / ignoring (code) group_left (g) h", ("f", "h")),
        ("sum without (instance) (i) unless j", ("i", "j")),
    ],
)
def test_the_metrics_a_query_reads_are_found_by_name(promql: str, names: tuple[str, ...]) -> None:
    assert metric_names(promql) == names


def test_a_field_knows_the_metrics_it_reads() -> None:
    avg_latency = BUILTIN.domains["http"].fields["avg_latency_ms"]

    assert avg_latency.sources() == (
        "fastapi_requests_duration_seconds_sum",
        "fastapi_requests_duration_seconds_count",
    )
    assert "up" in BUILTIN.sources()
    assert "http_requests_total" not in BUILTIN.sources()


def test_written_with_metrics_are_read_too_so_that_their_series_allow_a_zero() -> None:
    missed = BUILTIN.domains["business"].fields["missed_deductions_usd"]
    assert missed.written_with == ("gatewayz_credit_deduction_total",)
    assert missed.sources() == (
        "gatewayz_missed_credit_deductions_usd_total",
        "gatewayz_credit_deduction_total",
    )
    assert "gatewayz_credit_deduction_total" in BUILTIN.sources()
    # Never written by the gateway: nothing else may stand for it.
    slow = BUILTIN.domains["providers"].fields["slow_requests"]
    assert slow.sources() == ("provider_slow_requests_total",)


def test_written_with_takes_metric_names_only(tmp_path: Path) -> None:
    path = write_catalog(tmp_path, catalog_doc(hits=field_doc(written_with=["up{job='x'}"])))
    assert "domains.web.fields.hits.written_with.0: String should match pattern" in (
        catalog_error(path)
    )


def test_the_health_classes_are_one_definition_for_the_counts_and_the_providers_table() -> None:
    definitions = BUILTIN.definitions
    assert definitions["providers_healthy"] == "$health_score > 80"
    assert definitions["providers_degraded"] == "($health_score >= 60) <= 80"
    assert definitions["providers_unavailable"] == "$health_score < 60"
    table = BUILTIN.domains["providers"].fields["by_provider"]
    healthy = BUILTIN.domains["providers"].fields["healthy_providers"]
    rendered_class = healthy.render("5m").removeprefix("count(").removesuffix(")")
    assert rendered_class in table.columns["status"].render("5m")
    # Its rows are the providers total_providers counts, its score the one they average.
    total = BUILTIN.domains["providers"].fields["total_providers"]
    average = BUILTIN.domains["providers"].fields["avg_health_score"]
    assert table.render("5m") == average.render("5m").removeprefix("avg(").removesuffix(")")
    assert table.columns["health_score"].render("5m") == table.render("5m")
    assert "$providers" in BUILTIN.definitions["health_score"]
    assert total.query.startswith("count(")


def test_the_models_table_keeps_the_top_models_by_requests_most_first() -> None:
    table = BUILTIN.domains["models"].fields["by_model"]
    assert (table.label, table.order, table.limit) == ("model", "descending", "top_models")
    total_models = BUILTIN.domains["models"].fields["total_models"]
    # The same models total_models counts.
    assert total_models.render("5m") == f"count({table.render('5m')})"


def test_a_check_names_who_is_behind_it_with_a_validated_query(tmp_path: Path) -> None:
    breakers = BUILTIN.checks["provider_breakers_open"].names
    assert breakers is not None
    assert (breakers.label, breakers.prefix, breakers.values) == ("provider", "open", False)
    document = catalog_doc() | {
        "checks": {
            "many": {
                "help": "h",
                "field": "web.hits",
                "degraded": {"above": 1},
                "names": {"query": "hits[$windw]", "label": "page", "prefix": "pages"},
            }
        }
    }
    assert "checks.many.names: Value error, query uses unknown placeholders ['windw']" in (
        catalog_error(write_catalog(tmp_path, document))
    )


def test_a_lower_bound_is_for_numbers_and_is_validated_like_a_query() -> None:
    listed = catalog_doc(
        pages=field_doc(
            kind="labels", label="page", gauge="hits", lower_bound={"when": "x", "reason": "r"}
        )
    )
    with pytest.raises(CatalogError, match="`lower_bound` applies to numbers"):
        parse_catalog(yaml.safe_dump(listed), "mine.yaml")
    broken = catalog_doc(hits=field_doc(lower_bound={"when": "sum(x[$windw])", "reason": "r"}))
    with pytest.raises(CatalogError, match="lower_bound: Value error, query uses unknown"):
        parse_catalog(yaml.safe_dump(broken), "mine.yaml")
