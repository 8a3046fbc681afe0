"""Properties of parse_query_response: any answer becomes a QueryResult or an UpstreamError."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporter.errors import UpstreamError
from exporter.prometheus import QueryResult, Sample, parse_query_response

UPSTREAM = "http://prometheus.test:9090"
AT = 1_767_225_600.0

PROPERTY = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

statuses = st.one_of(
    st.just(200), st.sampled_from([400, 422, 500, 502, 503]), st.integers(100, 599)
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.text(max_size=10), children, max_size=5),
    ),
    max_leaves=25,
)

# Value strings the API sends, strings that are almost numbers, and anything else.
value_texts = st.one_of(
    st.sampled_from(["NaN", "+Inf", "-Inf", "0", "-0", "1e308", "1e999"]),
    st.floats().map(repr),
    st.sampled_from(["", " ", "1_0", "0x1", "inf", "nan", "1,5"]),
    st.text(max_size=10),
)
sample_pairs = st.tuples(st.floats(), value_texts).map(list)
sample_values = st.one_of(sample_pairs, json_values)
label_maps = st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4)
vector_items = st.one_of(
    st.fixed_dictionaries({"metric": label_maps, "value": sample_pairs}),
    st.fixed_dictionaries(
        {}, optional={"metric": st.one_of(label_maps, json_values), "value": sample_values}
    ),
    json_values,
)
results = st.one_of(st.lists(vector_items, max_size=4), sample_values, json_values)
result_types = st.one_of(
    st.sampled_from(["vector", "scalar"]), st.sampled_from(["matrix", "string"]), json_values
)
data_fields = st.one_of(
    st.fixed_dictionaries({"resultType": result_types, "result": results}),
    json_values,
)
prometheus_like = st.fixed_dictionaries(
    {
        "status": st.one_of(st.just("success"), st.just("error"), json_values),
        "data": data_fields,
    },
    optional={
        "errorType": st.one_of(
            st.sampled_from(["bad_data", "execution", "unavailable", "timeout", "422", ""]),
            json_values,
        ),
        "error": json_values,
        "warnings": st.one_of(st.lists(st.text(max_size=20), max_size=3), json_values),
        "infos": json_values,
    },
)


# Well-formed down to `data`, so that the fuzzing reaches the series and their values.
success_answers = st.fixed_dictionaries(
    {
        "status": st.just("success"),
        "data": st.fixed_dictionaries(
            {"resultType": st.sampled_from(["vector", "scalar"]), "result": results}
        ),
    },
    optional={"warnings": st.one_of(st.lists(st.text(max_size=20), max_size=3), json_values)},
)


def parses_or_raises_upstream_error(status: int, body: bytes) -> QueryResult | UpstreamError:
    """The outcome of parsing; any exception but an UpstreamError propagates and fails the test."""
    outcome: QueryResult | UpstreamError
    try:
        outcome = parse_query_response(UPSTREAM, status, body)
    except UpstreamError as error:
        outcome = error
    if isinstance(outcome, UpstreamError):
        assert outcome.upstream == UPSTREAM
    else:
        assert isinstance(outcome, QueryResult)
        assert all(isinstance(sample, Sample) for sample in outcome.samples)
        assert all(isinstance(sample.value, float) for sample in outcome.samples)
    return outcome


def encode(document: Any) -> bytes:
    return json.dumps(document).encode()


@PROPERTY
@given(status=statuses, body=st.binary(max_size=2_000))
def test_arbitrary_bytes_give_a_result_or_an_upstream_error(status: int, body: bytes) -> None:
    parses_or_raises_upstream_error(status, body)


@PROPERTY
@given(status=statuses, document=json_values)
def test_arbitrary_json_gives_a_result_or_an_upstream_error(status: int, document: Any) -> None:
    parses_or_raises_upstream_error(status, encode(document))


@PROPERTY
@given(status=statuses, document=prometheus_like)
def test_fuzzed_prometheus_answer_gives_a_result_or_an_upstream_error(
    status: int, document: dict[str, Any]
) -> None:
    parses_or_raises_upstream_error(status, encode(document))


@PROPERTY
@given(document=success_answers)
def test_fuzzed_series_give_a_result_or_an_upstream_error(document: dict[str, Any]) -> None:
    parses_or_raises_upstream_error(200, encode(document))


@PROPERTY
@given(status=statuses, document=prometheus_like, cut=st.integers(min_value=0))
def test_truncated_prometheus_answer_gives_a_result_or_an_upstream_error(
    status: int, document: dict[str, Any], cut: int
) -> None:
    body = encode(document)

    parses_or_raises_upstream_error(status, body[: cut % (len(body) + 1)])


@PROPERTY
@given(status=statuses, document=prometheus_like)
def test_a_result_is_only_returned_for_http_200(status: int, document: dict[str, Any]) -> None:
    outcome = parses_or_raises_upstream_error(status, encode(document))

    if isinstance(outcome, QueryResult):
        assert status == 200
        assert document["status"] == "success"


def render_value(value: float) -> str:
    """How Prometheus writes a sample value."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(value)


@PROPERTY
@given(
    series=st.lists(
        st.tuples(
            st.dictionaries(st.text(max_size=10), st.text(max_size=10), max_size=4),
            st.floats(allow_nan=False),
        ),
        max_size=10,
    ),
    warnings=st.lists(st.text(max_size=20), max_size=3),
)
def test_well_formed_vector_answer_round_trips_labels_and_values(
    series: list[tuple[dict[str, str], float]], warnings: list[str]
) -> None:
    document = {
        "status": "success",
        "warnings": warnings,
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": labels, "value": [AT, render_value(value)]} for labels, value in series
            ],
        },
    }

    result = parse_query_response(UPSTREAM, 200, encode(document))

    assert result == QueryResult(
        samples=tuple(Sample(labels=labels, value=value) for labels, value in series),
        warnings=tuple(warnings),
        upstream=UPSTREAM,
    )


@pytest.mark.parametrize(
    "body", [b"[" * 100_000, b'{"status": "success", "data": ' + b"[" * 100_000]
)
def test_deeply_nested_body_is_an_upstream_error(body: bytes) -> None:
    with pytest.raises(UpstreamError):
        parse_query_response(UPSTREAM, 502, body)
