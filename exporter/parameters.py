"""What a client may ask for: a window, an instant and on/off flags, checked before any use.

The HTTP server reads them from a request's query string and `summary-exporter check` from
its arguments, by the same rules and with the same messages. Each error is InvalidRequest,
which the server answers with 400. None of these strings ever reaches PromQL: a window does
only as the canonical rendering of its parsed length (`FieldSpec.render`).
"""

from __future__ import annotations

import re
from datetime import datetime

from multidict import MultiMapping

from exporter.durations import parse_duration
from exporter.errors import InvalidRequest

MAX_LENGTH = 64
# How far ahead of this host's clock a requested instant may be (clock skew), in seconds.
FUTURE_TOLERANCE = 5.0
_TRUE, _FALSE = ("1", "true"), ("0", "false")
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?")
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]{1,9}))?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
# Both forms of an instant, for the OpenAPI document.
INSTANT_PATTERN = f"^({_UNIX_SECONDS.pattern}|{_RFC3339.pattern})$"


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
    """An evaluation instant, to the millisecond: unix seconds in ASCII digits (a fraction
    allowed) or RFC 3339 with its offset; after the epoch and not in the future, whichever
    way it is written."""
    if _UNIX_SECONDS.fullmatch(text):
        at = float(text)
    elif (written := _RFC3339.fullmatch(text)) is not None:
        at = _rfc3339(text, *written.groups())
    else:
        raise InvalidRequest(
            f"time: {text!r} is neither unix seconds (1767225600) nor RFC 3339"
            " (2026-01-01T00:00:00Z)"
        )
    at = round(at, 3)
    if at <= 0:
        raise InvalidRequest(f"time: {text!r} is not after 1970-01-01T00:00:00Z")
    if at > now + FUTURE_TOLERANCE:
        raise InvalidRequest(f"time: {text!r} is in the future")
    return at


def _rfc3339(text: str, date_time: str, fraction: str | None, offset: str) -> float:
    # Python reads six digits of a fraction at most; a millisecond needs three.
    whole = f"{date_time}.{(fraction or '0')[:6]}{'+00:00' if offset in 'Zz' else offset}"
    try:
        return datetime.fromisoformat(whole.replace("t", "T")).timestamp()
    except ValueError:
        raise InvalidRequest(f"time: {text!r} is not a date and time of the calendar") from None


def parse_flag(name: str, value: str | None) -> bool:
    """An on/off parameter: absent, 0 or false is off; 1 or true is on."""
    if value is None or value in _FALSE:
        return False
    if value in _TRUE:
        return True
    raise InvalidRequest(f"{name}: {value!r} is not one of 1, true, 0, false")
