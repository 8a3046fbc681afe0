"""Prometheus duration strings (`5m`, `1h30m`, `250ms`), parsed and re-rendered.

A window from a request reaches PromQL only as the canonical rendering of a parsed value,
never as the string the client sent.
"""

from __future__ import annotations

import argparse
import itertools
import re

_UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1_000,
    "ms": 1,
}
_PART = re.compile(r"([0-9]{1,12})(ms|y|w|d|h|m|s)")
_WHOLE = re.compile(r"(?:[0-9]{1,12}(?:ms|y|w|d|h|m|s))+")


def parse_duration(text: str) -> int:
    """Milliseconds of a Prometheus duration; ValueError when `text` is not one or not positive."""
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"{text!r} is not a Prometheus duration such as 30s, 5m, 1h or 1h30m")
    units = [unit for _, unit in _PART.findall(text)]
    order = list(_UNITS_MS)
    if any(order.index(a) >= order.index(b) for a, b in itertools.pairwise(units)):
        raise ValueError(f"{text!r} must list its units from largest to smallest, each once")
    millis = sum(int(number) * _UNITS_MS[unit] for number, unit in _PART.findall(text))
    if millis <= 0:
        raise ValueError(f"{text!r} must be longer than zero")
    return millis


def format_duration(millis: int) -> str:
    """The canonical Prometheus rendering of a positive number of milliseconds."""
    parts = []
    for unit, size in _UNITS_MS.items():
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def duration_argument(text: str) -> str:
    """The canonical rendering of a duration given on the command line, for argparse."""
    try:
        return format_duration(parse_duration(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
