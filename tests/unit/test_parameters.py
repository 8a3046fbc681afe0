"""Request parameters, as the server and `check` both read them."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from exporter.errors import InvalidRequest
from exporter.parameters import MAX_LENGTH, parse_flag, parse_time, parse_window, single

NOW = 1_767_227_400.0  # 2026-01-01T00:30:00Z


@pytest.mark.parametrize("written", ["7d", "1w", "300s", "1h30m", "90m"])
def test_a_window_comes_back_as_written(written: str) -> None:
    assert parse_window(written, "30d") == written


def test_a_window_over_the_maximum_names_the_maximum_as_configured() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_window("365d", "30d")
    assert str(refused.value) == "window: '365d' is longer than the maximum 30d"


def test_a_window_equal_to_the_maximum_in_another_spelling_is_accepted() -> None:
    assert parse_window("720h", "30d") == "720h"


@pytest.mark.parametrize("text", ["5x", "0s", "5m])) or vector(1)", "5m1h", ""])
def test_a_window_that_is_not_a_positive_duration_is_refused(text: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^window: "):
        parse_window(text, "30d")


def test_without_a_maximum_any_positive_duration_is_a_window() -> None:
    assert parse_window("400d") == "400d"


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("1767225600", 1_767_225_600.0),
        ("1767225600.1234", 1_767_225_600.123),
        ("2026-01-01T00:00:00Z", 1_767_225_600.0),
        ("2026-01-01T01:00:00+01:00", 1_767_225_600.0),
        ("2026-01-01t00:00:00.123456789z", 1_767_225_600.123),
        ("0.001", 0.001),
        ("1970-01-01T00:00:00.001Z", 0.001),
    ],
)
def test_a_time_is_unix_seconds_or_rfc3339_to_the_millisecond(text: str, instant: float) -> None:
    assert parse_time(text, NOW) == instant


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "neither unix seconds"),
        ("2026-01-01T00:00:00", "neither unix seconds"),
        ("2026-01-01", "neither unix seconds"),
        ("20260101T000000Z", "neither unix seconds"),
        ("NaN", "neither unix seconds"),
        ("inf", "neither unix seconds"),
        ("1e9", "neither unix seconds"),
        ("1_767_225_600", "neither unix seconds"),
        (" 1767225600", "neither unix seconds"),
        ("١٧٦٧٢٢٥٦٠٠", "neither unix seconds"),  # digits, but not ASCII ones
        ("-1", "neither unix seconds"),
        ("2026-02-30T00:00:00Z", "not a date and time of the calendar"),
        # The same lower limit whichever way it is written.
        ("0", "not after 1970-01-01T00:00:00Z"),
        ("0.0004", "not after 1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00Z", "not after 1970-01-01T00:00:00Z"),
        ("1970-01-01T00:00:00.0004Z", "not after 1970-01-01T00:00:00Z"),
        ("1969-12-31T23:00:00Z", "not after 1970-01-01T00:00:00Z"),
        ("1970-01-01T01:00:00+02:00", "not after 1970-01-01T00:00:00Z"),
        (str(NOW + 60), "is in the future"),
    ],
)
def test_a_time_that_is_no_past_instant_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_time(text, NOW)


def test_a_time_within_the_clock_skew_tolerance_is_accepted() -> None:
    assert parse_time(str(NOW + 4), NOW) == NOW + 4


@pytest.mark.parametrize(
    ("value", "on"), [(None, False), ("0", False), ("false", False), ("1", True), ("true", True)]
)
def test_a_flag_is_off_unless_1_or_true(value: str | None, on: bool) -> None:
    assert parse_flag("explain", value) is on


def test_any_other_flag_value_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="explain: 'yes' is not one of 1, true, 0, false"):
        parse_flag("explain", "yes")


def test_a_parameter_is_read_once_and_absent_is_none() -> None:
    assert single(MultiDict({"window": "1h"}), "window") == "1h"
    assert single(MultiDict(), "window") is None


def test_a_parameter_given_twice_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="given 2 times"):
        single(MultiDict([("window", "1h"), ("window", "2h")]), "window")


def test_a_parameter_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=f"longer than {MAX_LENGTH} characters"):
        single(MultiDict({"window": "5m" * 40}), "window")
