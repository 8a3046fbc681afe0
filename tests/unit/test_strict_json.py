"""The one JSON encoder: strict, compact, and without the float residue of Prometheus' math."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter.strict_json import dumps, encode, encode_members, join_members


def test_float_residue_is_written_as_the_number_it_stands_for() -> None:
    assert dumps({"avg_response_time_ms": 1.0999999999999999}) == '{"avg_response_time_ms":1.1}'
    assert dumps([0.7000000000000002, 0.1 + 0.2]) == "[0.7,0.3]"


def test_integers_stay_integers_and_exact_floats_keep_their_point() -> None:
    assert dumps({"total_requests": 54000, "ratio": 20.0, "big": 10**15}) == (
        '{"total_requests":54000,"ratio":20.0,"big":1000000000000000}'
    )


def test_nested_values_and_tuples_are_rounded_too() -> None:
    assert json.loads(encode({"a": [{"b": (2 / 3,)}], "flag": True, "none": None})) == {
        "a": [{"b": [0.666666666667]}],
        "flag": True,
        "none": None,
    }


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(value: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        encode({"value": value})


def test_indented_text_is_for_people() -> None:
    assert dumps({"a": 1.0999999999999999}, indent=2) == '{\n  "a": 1.1\n}'


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_finite_float_stays_within_1e_9_relative_of_its_value(value: float) -> None:
    written = json.loads(dumps(value))
    assert written == pytest.approx(value, rel=1e-9, abs=0)


def test_an_object_joined_from_its_members_is_the_object_encoded_whole() -> None:
    data = {"a": [1.0999999999999999, {"b": 2 / 3}], "n": 3, '\u00e9"': "x\ny", "e": {}}
    members = encode_members(data)
    assert join_members(members.values()) == encode(data)
    changed = members | encode_members({"n": 4.0000000000000001})
    assert join_members(changed.values()) == encode(data | {"n": 4.0})
    assert join_members([]) == encode({})


def test_a_member_is_as_strict_as_the_whole() -> None:
    with pytest.raises(ValueError, match="Out of range float values"):
        encode_members({"a": math.nan})
