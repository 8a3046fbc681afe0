"""Prometheus duration strings: what parse_duration accepts, and the canonical rendering."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.durations import format_duration, parse_duration

SECOND = 1_000
MINUTE = 60 * SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("30s", 30 * SECOND),
        ("5m", 5 * MINUTE),
        ("1h30m", HOUR + 30 * MINUTE),
        ("250ms", 250),
        ("1y", 365 * DAY),
        ("2w", 14 * DAY),
        ("30d", 30 * DAY),
        ("1m500ms", MINUTE + 500),
        ("1y1w1d1h1m1s1ms", 365 * DAY + 7 * DAY + DAY + HOUR + MINUTE + SECOND + 1),
        ("90s", 90 * SECOND),
    ],
)
def test_parse_duration_returns_milliseconds(text: str, millis: int) -> None:
    assert parse_duration(text) == millis


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("5", id="number-without-unit"),
        pytest.param("5x", id="unknown-unit"),
        pytest.param("m", id="unit-without-number"),
        pytest.param("5 m", id="inner-space"),
        pytest.param(" 5m", id="leading-space"),
        pytest.param("5M", id="upper-case-unit"),
        pytest.param("1.5h", id="fraction"),
        pytest.param("-5m", id="negative"),
        pytest.param("+5m", id="signed"),
        pytest.param("5m\n", id="trailing-newline"),
    ],
)
def test_parse_duration_rejects_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Prometheus duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0s", "0ms", "0h0m", "000m"])
def test_parse_duration_rejects_zero_length(text: str) -> None:
    with pytest.raises(ValueError, match="must be longer than zero"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("5m1h", id="smaller-unit-first"),
        pytest.param("1s1m", id="seconds-before-minutes"),
        pytest.param("1ms1s", id="millis-before-seconds"),
        pytest.param("1h1h", id="repeated-unit"),
        pytest.param("1h30m1h", id="unit-repeated-later"),
    ],
)
def test_parse_duration_requires_units_from_largest_to_smallest_each_once(text: str) -> None:
    with pytest.raises(ValueError, match="from largest to smallest, each once"):
        parse_duration(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("1" * 13 + "s", id="13-digit-number"),
        pytest.param("9" * 10_000 + "s", id="10k-digit-number"),
        pytest.param("1s" * 5_000, id="10k-characters-of-parts"),
        pytest.param("5m" + "x" * 100_000, id="long-garbage-suffix"),
    ],
)
def test_parse_duration_rejects_very_long_strings(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|largest to smallest"):
        parse_duration(text)


def test_parse_duration_accepts_twelve_digit_numbers() -> None:
    assert parse_duration("9" * 12 + "ms") == 999_999_999_999


def test_parse_duration_reads_ms_as_milliseconds_not_minutes_then_seconds() -> None:
    assert parse_duration("5ms") == 5


@pytest.mark.parametrize("text", ["\u0665m", "\uff15m"])
def test_parse_duration_rejects_non_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Prometheus duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("millis", "text"),
    [
        (90 * SECOND, "1m30s"),
        (60 * MINUTE, "1h"),
        (HOUR + 30 * MINUTE, "1h30m"),
        (5 * MINUTE, "5m"),
        (250, "250ms"),
        (1_500, "1s500ms"),
        (8 * DAY, "1w1d"),
        (30 * DAY, "4w2d"),
        (366 * DAY, "1y1d"),
    ],
)
def test_format_duration_renders_the_canonical_form(millis: int, text: str) -> None:
    assert format_duration(millis) == text


@pytest.mark.parametrize(("text", "canonical"), [("90s", "1m30s"), ("60m", "1h"), ("7d", "1w")])
def test_parse_then_format_gives_the_canonical_spelling(text: str, canonical: str) -> None:
    assert format_duration(parse_duration(text)) == canonical


@settings(max_examples=300, database=None)
@given(st.integers(min_value=1, max_value=10**15))
def test_format_duration_parses_back_to_the_same_milliseconds(millis: int) -> None:
    assert parse_duration(format_duration(millis)) == millis


@settings(max_examples=300, database=None)
@given(st.integers(min_value=1, max_value=10**15))
def test_canonical_form_is_a_fixed_point(millis: int) -> None:
    canonical = format_duration(millis)
    assert format_duration(parse_duration(canonical)) == canonical
