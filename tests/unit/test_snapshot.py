"""Turning query answers into field values: never a number Prometheus did not give."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.catalog import Catalog, FieldSpec, Kind, Unit, load_catalog
from exporter.errors import QueryRejected, UpstreamUnreachable
from exporter.prometheus import QueryResult, Sample, bounded_warnings, shorten
from exporter.ranking import LABEL_LENGTH_LIMIT
from exporter.snapshot import (
    AT_LEAST,
    Existence,
    FieldValue,
    Snapshot,
    carry_over,
    explain,
    explain_zero_denominators,
    format_instant,
    shape,
    shape_table,
)
from exporter.strict_json import encode
from tests.conftest import LIMITS

AT = 1_767_225_600.0
BUILT_IN = load_catalog()


def spec(kind: Kind = Kind.NUMBER, **extra: object) -> FieldSpec:
    values: dict[str, object] = {"query": "sum(x)", "kind": kind, "unit": Unit.COUNT, "help": "h"}
    values.update(extra)
    return FieldSpec.model_validate(values)


def answer(*values: float, label: str = "model") -> QueryResult:
    return QueryResult(tuple(Sample({label: f"m{i}"}, v) for i, v in enumerate(values)))


def test_a_single_value_is_served_as_is() -> None:
    assert shape(spec(), answer(0.1 + 0.2), AT).value == 0.1 + 0.2


def test_an_integral_count_is_a_json_integer() -> None:
    value = shape(spec(Kind.INTEGER), answer(200.0), AT).value
    assert value == 200
    assert type(value) is int


def test_a_fractional_count_is_null_rather_than_rounded_here() -> None:
    field = shape(spec(Kind.INTEGER), answer(199.5), AT)
    assert field.value is None
    assert field.reason is not None
    assert "round()" in field.reason


def test_an_empty_result_is_null_with_the_catalog_reason() -> None:
    field = shape(spec(when_empty="no series for x"), answer(), AT)
    assert (field.value, field.reason) == (None, "no series for x")


def test_an_empty_result_is_zero_only_where_the_catalog_says_so() -> None:
    assert shape(spec(Kind.INTEGER, no_series_means_zero=True), answer(), AT).value == 0


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (math.nan, "Prometheus returned NaN"),
        (math.inf, "Prometheus returned +Inf"),
        (-math.inf, "Prometheus returned -Inf"),
    ],
)
def test_nan_and_infinities_are_null_with_the_reason(value: float, reason: str) -> None:
    field = shape(spec(), answer(value), AT)
    assert (field.value, field.reason) == (None, reason)


def test_several_series_for_a_single_value_field_is_null_not_summed() -> None:
    field = shape(spec(), answer(1, 2), AT)
    assert field.value is None
    assert field.reason is not None
    assert "2 series" in field.reason


def test_labels_are_listed_most_first_with_ties_by_name() -> None:
    labels = spec(Kind.LABELS, label="model", gauge="requests", no_series_means_zero=True)
    field = shape(labels, answer(5, 80, 120, 80), AT)
    assert field.value == ["m2", "m1", "m3", "m0"]
    assert field.series == (("m2", 120), ("m1", 80), ("m3", 80), ("m0", 5))


def test_labels_keep_max_entities_and_say_how_many_were_left_out() -> None:
    labels = spec(Kind.LABELS, label="model", gauge="requests", no_series_means_zero=True)
    field = shape(labels, answer(*range(1_000)), AT, max_entities=50)
    assert field.value == [f"m{i}" for i in range(999, 949, -1)]
    assert len(field.series) == 50
    assert field.warnings == ("950 series left out: beyond the first 50 (EXPORTER_MAX_ENTITIES)",)


def test_a_label_value_longer_than_128_characters_is_left_out_saying_so() -> None:
    labels = spec(Kind.LABELS, label="model", gauge="requests", no_series_means_zero=True)
    samples = (Sample({"model": "m" * 129}, 9.0), Sample({"model": "m" * 128}, 1.0))
    field = shape(labels, QueryResult(samples, ("a warning",)), AT)
    assert field.value == ["m" * LABEL_LENGTH_LIMIT]
    assert field.warnings == (
        "a warning",
        "1 series left out: a model longer than 128 characters",
    )


def test_no_labels_is_an_empty_list_when_no_series_means_none() -> None:
    labels = spec(Kind.LABELS, label="model", gauge="requests", no_series_means_zero=True)
    assert shape(labels, answer(), AT).value == []


def test_a_failed_query_is_null_with_what_the_upstream_said() -> None:
    error = QueryRejected("http://prom", "bad_data", "parse error at char 4", status=400)
    field = shape(spec(), error, AT)
    assert field.value is None
    assert field.reason == "query failed: http://prom: bad_data: parse error at char 4"
    assert field.error is error


def existing(*names: str, selector: str = "") -> Existence:
    """Which metrics have series: `names`, one series each."""
    return Existence(dict.fromkeys(names, 1), "1h", selector)


def test_an_empty_count_of_a_metric_that_exists_is_zero() -> None:
    count = spec(Kind.INTEGER, query="sum(x_total)", no_series_means_zero=True)
    field = shape(count, answer(), AT, existence=existing("x_total"))
    assert (field.value, field.missing) == (0, ())


def test_an_empty_count_of_a_metric_that_does_not_exist_is_null_naming_it() -> None:
    count = spec(Kind.INTEGER, query="sum(x_total)", no_series_means_zero=True)
    field = shape(count, answer(), AT, existence=existing("other", selector='job="a"'))
    assert field.value is None
    assert field.missing == ("x_total",)
    assert field.reason == (
        'x_total{job="a"} has no series in the upstream over the last 1h'
        " (the gateway does not write it, or is down)"
    )


def test_a_count_of_several_metrics_is_zero_while_one_of_them_exists() -> None:
    count = spec(Kind.INTEGER, query="sum(a_total) + sum(b_total)", no_series_means_zero=True)
    assert shape(count, answer(), AT, existence=existing("b_total")).value == 0
    field = shape(count, answer(), AT, existence=existing())
    assert field.reason == (
        "no series of a_total or b_total in the upstream over the last 1h"
        " (the gateway writes none of them, or is down)"
    )


def test_an_empty_gauge_of_a_metric_that_does_not_exist_says_so_not_its_quiet_reason() -> None:
    gauge = spec(query="sum(keys)", when_empty="no keys sample at the instant")
    assert shape(gauge, answer(), AT, existence=existing("keys")).reason == (
        "no keys sample at the instant"
    )
    assert shape(gauge, answer(), AT, existence=existing()).missing == ("keys",)


def test_without_knowing_which_metrics_exist_an_empty_count_is_a_failure_not_zero() -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect")
    unknown = Existence({}, "1h", error=error)
    count = spec(Kind.INTEGER, query="sum(x_total)", no_series_means_zero=True)
    field = shape(count, answer(), AT, existence=unknown)
    assert (field.value, field.error) == (None, error)
    # A value needs no such knowledge.
    assert shape(count, answer(3.0), AT, existence=unknown).value == 3


def test_a_value_whose_lower_bound_query_answers_is_marked_at_least() -> None:
    assert shape(spec(), answer(5000), AT, lower_bound=answer(1)).bound == AT_LEAST
    assert shape(spec(), answer(750), AT, lower_bound=answer()).bound is None
    error = QueryRejected("http://prom", "bad_data", "parse error", status=400)
    failed = shape(spec(), answer(5000), AT, lower_bound=error)
    assert (failed.value, failed.error) == (None, error)


def test_the_document_lists_lower_bounds_beside_the_nulls() -> None:
    fields = {
        ("http", "p95_latency_ms"): FieldValue(5000.0, AT, bound=AT_LEAST),
        ("http", "avg_latency_ms"): FieldValue(None, AT, reason="no requests in window (0/0)"),
    }
    document = _snapshot(AT, fields).document(AT)
    assert document["bounds"] == {"http.p95_latency_ms": "at_least"}
    assert document["nulls"] == {"http.avg_latency_ms": "no requests in window (0/0)"}


def test_a_never_written_metric_keeps_its_reason_over_a_zero_denominator(catalog: Catalog) -> None:
    fields = {
        (d, f): FieldValue(0 if s.no_series_means_zero else None, AT, reason="empty")
        for d, f, s in catalog.fields()
    }
    fields[("http", "avg_latency_ms")] = FieldValue(
        None, AT, reason="never written", missing=("fastapi_requests_duration_seconds_sum",)
    )
    explained = explain_zero_denominators(catalog, fields)
    assert explained[("http", "avg_latency_ms")].reason == "never written"
    assert explained[("http", "error_rate")].reason == "no requests in window (0/0)"


def test_a_null_ratio_over_a_zero_denominator_says_0_over_0(catalog: Catalog) -> None:
    fields = {
        (d, f): FieldValue(0 if s.no_series_means_zero else None, AT, reason="empty")
        for d, f, s in catalog.fields()
    }
    explained = explain_zero_denominators(catalog, fields)
    assert explained[("http", "error_rate")].reason == "no requests in window (0/0)"
    assert explained[("providers", "avg_response_time_ms")].reason == "empty"


def test_timestamps_are_rfc3339_utc() -> None:
    assert format_instant(AT) == "2026-01-01T00:00:00Z"
    assert format_instant(AT + 0.25) == "2026-01-01T00:00:00.250Z"


def _snapshot(at: float, fields: dict[tuple[str, str], FieldValue]) -> Snapshot:
    return Snapshot(
        instant=at, window="5m", fields=fields, upstream="http://prom", catalog=BUILT_IN
    )


def test_a_failing_field_keeps_its_last_good_value_marked_stale() -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect")
    before = _snapshot(AT, {("http", "x"): FieldValue(5, AT), ("http", "y"): FieldValue(1, AT)})
    now = _snapshot(
        AT + 30,
        {
            ("http", "x"): FieldValue(None, AT + 30, "query failed", error=error),
            ("http", "y"): FieldValue(2, AT + 30),
        },
    )
    merged = carry_over(before, now, max_staleness=150)
    assert merged.fields[("http", "x")].value == 5
    assert merged.fields[("http", "x")].stale
    assert merged.fields[("http", "y")].value == 2
    document = merged.document(now=AT + 40)
    assert document["stale"] is True
    assert document["timestamp"] == format_instant(AT + 30)
    assert document["stale_fields"]["http.x"]["age_seconds"] == 40
    assert document["nulls"] == {}


def test_a_field_failing_longer_than_max_staleness_becomes_null_with_the_reason() -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect")
    before = _snapshot(AT, {("http", "x"): FieldValue(5, AT)})
    now = _snapshot(AT + 200, {("http", "x"): FieldValue(None, AT + 200, "failed", error=error)})
    merged = carry_over(before, now, max_staleness=150)
    assert merged.fields[("http", "x")].value is None
    assert merged.fields[("http", "x")].reason == (
        "query failing for 200s: http://prom: cannot connect"
    )


def test_when_nothing_came_back_the_document_keeps_the_old_instant_and_ages() -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect")
    before = _snapshot(AT, {("http", "x"): FieldValue(5, AT)})
    now = _snapshot(AT + 30, {("http", "x"): FieldValue(None, AT + 30, "failed", error=error)})
    document = carry_over(before, now, max_staleness=150).document(now=AT + 45)
    assert document["timestamp"] == format_instant(AT)
    assert document["age_seconds"] == 45
    assert document["upstream"]["up"] is False


def test_the_age_keeps_growing_after_stale_fields_have_turned_null() -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect")
    snapshot = _snapshot(AT, {("http", "x"): FieldValue(5, AT)})
    for minutes in range(1, 6):  # past max_staleness from the third minute on
        failed = FieldValue(None, AT + 60 * minutes, "failed", error=error)
        snapshot = carry_over(
            snapshot, _snapshot(AT + 60 * minutes, {("http", "x"): failed}), max_staleness=150
        )
    document = snapshot.document(now=AT + 301)
    assert document["metrics"]["http"]["x"] is None
    assert document["stale_fields"] == {}
    assert document["timestamp"] == format_instant(AT)
    assert document["age_seconds"] == 301


def test_before_any_answer_the_age_counts_from_the_first_attempt() -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect")
    first = _snapshot(AT, {("http", "x"): FieldValue(None, AT, "failed", error=error)})
    later = _snapshot(AT + 60, {("http", "x"): FieldValue(None, AT + 60, "failed", error=error)})
    assert carry_over(first, later, max_staleness=150).document(now=AT + 61)["age_seconds"] == 61


def test_encoded_bytes_are_the_document_with_the_age_of_the_moment() -> None:
    snapshot = _snapshot(
        AT, {("http", "x"): FieldValue(5, AT), ("db", "y"): FieldValue(None, AT, "r")}
    )
    for now, domains in ((AT + 1.5, None), (AT + 7.25, None), (AT + 3, ("db",))):
        encoded = json.loads(snapshot.encode(now, domains))
        assert encoded == snapshot.document(now, domains)
    assert json.loads(snapshot.encode(AT + 7.25))["age_seconds"] == 7.25


def test_encoded_bytes_are_those_of_the_whole_document_encoded_at_once() -> None:
    snapshot = _snapshot(AT, {("http", "x"): FieldValue(2 / 3, AT)})
    for now in (AT + 1.5, AT + 2.0001, AT + 1e6 + 0.123):
        assert snapshot.encode(now) == encode(snapshot.document(now))


# Clock readings around the millisecond boundaries of the age, where a shared body ends.
_NEAR_A_MILLISECOND = st.builds(
    lambda ms, offset: ms / 1000 + offset,
    st.integers(min_value=-2, max_value=5000),
    st.floats(min_value=-0.0006, max_value=0.0006),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_NEAR_A_MILLISECOND, min_size=1, max_size=40))
def test_requests_sharing_a_body_get_exactly_the_age_of_their_moment(offsets: list[float]) -> None:
    # Bodies are reused within a millisecond of age: in any order of clock readings, each
    # answer must equal the document built for its own moment, age rounded to the ms.
    snapshot = _snapshot(AT, {("http", "x"): FieldValue(5, AT)})
    for offset in sorted(offsets) + offsets:
        now = AT + offset
        assert json.loads(snapshot.encode(now)) == snapshot.document(now)
        # The age of `now` as a float of epoch seconds holds it: AT + offset is not exact.
        assert json.loads(snapshot.encode(now))["age_seconds"] == round(max(0.0, now - AT), 3)


def test_requests_in_the_same_millisecond_of_age_share_one_body() -> None:
    snapshot = _snapshot(AT, {("http", "x"): FieldValue(5, AT)})
    assert snapshot.encode(AT + 1.0001) is snapshot.encode(AT + 1.0002)
    assert snapshot.encode(AT + 1.0021) is not snapshot.encode(AT + 1.0001)
    assert snapshot.encode(AT + 1.0001, ("http",)) is not snapshot.encode(AT + 1.0001)


def test_a_stale_snapshot_encodes_each_field_age_at_the_moment() -> None:
    error = UpstreamUnreachable("http://prom", "cannot connect")
    before = _snapshot(AT, {("http", "x"): FieldValue(5, AT)})
    now = _snapshot(AT + 30, {("http", "x"): FieldValue(None, AT + 30, "failed", error=error)})
    merged = carry_over(before, now, max_staleness=150)
    first = json.loads(merged.encode(AT + 40))
    second = json.loads(merged.encode(AT + 50))
    assert first["stale_fields"]["http.x"]["age_seconds"] == 40
    assert second["stale_fields"]["http.x"]["age_seconds"] == 50


def test_the_largest_document_the_bounds_allow_for_the_built_in_catalog_is_under_1_mib(
    catalog: Catalog,
) -> None:
    # Every field answered with as much text as is kept, of the character that costs most to
    # encode (12 bytes once escaped in JSON), and every field stale with the longest error.
    costly = "\U0001f600"
    told = bounded_warnings([costly * 1_000 + str(n) for n in range(10)])
    error = QueryRejected(
        "http://prom", shorten(costly * 1_000, 40), shorten(costly * 1_000), status=422
    )

    def long(n: int) -> str:
        return costly * (LABEL_LENGTH_LIMIT - 4) + f"{n:04d}"

    fields = {}
    for domain, name, field_spec in catalog.fields():
        key = field_spec.label or "model"
        entities = [long(n) for n in range(200)]
        ranked = QueryResult(
            tuple(Sample({key: e}, float(n)) for n, e in enumerate(entities)), told
        )
        if field_spec.kind is Kind.TABLE:
            columns = {
                column_name: QueryResult(
                    tuple(
                        Sample({key: e, **({column.label: long(n)} if column.label else {})}, 1.0)
                        for n, e in enumerate(entities)
                    ),
                    told,
                )
                for column_name, column in field_spec.columns.items()
            }
            shaped = shape_table(
                field_spec, ranked, columns, AT, existence=Existence({}, "1h"), limits=LIMITS
            )
        elif field_spec.kind is Kind.LABELS:
            shaped = shape(field_spec, ranked, AT, max_entities=LIMITS.max_entities)
        else:
            shaped = shape(field_spec, QueryResult((Sample({}, 1.0),), told), AT)
        fields[(domain, name)] = replace(shaped, error=error)
    snapshot = Snapshot(AT, "5m", fields, "http://prom", catalog)
    document = snapshot.document(AT + 60) | {"explain": explain(catalog, snapshot)}
    assert len(encode(document)) < 1024 * 1024
