"""What a client may ask for: a window, an instant and on/off flags, checked before any use.

The HTTP server reads them from a request's query string and `summary-exporter check` from
its arguments, by the same rules and with the same messages. Each error is InvalidRequest,
which the server answers with 400. None of these strings ever reaches PromQL: a window does
only as the canonical rendering of its parsed length (`FieldSpec.render`).
"""

from __future__ import annotations

import math
from datetime import datetime

from multidict import MultiMapping

from exporter.durations import parse_duration
from exporter.errors import InvalidRequest

MAX_LENGTH = 64
# How far ahead of this host's clock a requested instant may be (clock skew), in seconds.
FUTURE_TOLERANCE = 5.0
_TRUE, _FALSE = ("1", "true"), ("0", "false")


def single(query: MultiMapping[str], name: str) -> str | None:
    """The one value of parameter `name`, or None; given twice or too long, it is refused."""
    values = query.getall(name, [])
    if len(values) > 1:
        raise InvalidRequest(f"parameter {name!r} given {len(values)} times; give it once")
    if values and len(values[0]) > MAX_LENGTH:
        raise InvalidRequest(f"parameter {name!r} is longer than {MAX_LENGTH} characters")
    return values[0] if values else None


def parse_window(text: str, maximum: str | None = None) -> str:
    """`text` as written, once it is a Prometheus duration no longer than `maximum` (the
    EXPORTER_MAX_WINDOW setting, named as configured)."""
    try:
        millis = parse_duration(text)
    except ValueError as error:
        raise InvalidRequest(f"window: {error}") from None
    if maximum is not None and millis > parse_duration(maximum):
        raise InvalidRequest(f"window: {text!r} is longer than the maximum {maximum}")
    return text


def parse_time(text: str, now: float) -> float:
    """An evaluation instant, RFC 3339 or unix seconds, not in the future; to the millisecond."""
    try:
        at = float(text)
    except ValueError:
        at = _rfc3339(text)
    if not math.isfinite(at) or at <= 0:
        raise InvalidRequest(f"time: {text!r} is not a positive finite instant")
    if at > now + FUTURE_TOLERANCE:
        raise InvalidRequest(f"time: {text!r} is in the future")
    return round(at, 3)


def _rfc3339(text: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"time: {text!r} is neither RFC 3339 (2026-01-01T00:00:00Z) nor unix seconds"
        ) from None
    if moment.tzinfo is None:
        raise InvalidRequest(f"time: {text!r} needs a timezone, e.g. a trailing Z")
    return moment.timestamp()


def parse_flag(name: str, value: str | None) -> bool:
    """An on/off parameter: absent, 0 or false is off; 1 or true is on."""
    if value is None or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise InvalidRequest(f"{name}: {value!r} is not one of 1, true, 0, false")
