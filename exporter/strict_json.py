"""The one JSON encoder of every document the exporter writes: strict, and without float noise.

Strict: NaN and ±Inf are refused (`allow_nan=False`), since every non-finite answer was already
turned into null with its reason. Without noise: Prometheus' arithmetic leaves binary residue
such as `1.0999999999999999` for 1.1, so floats are written with 12 significant digits, which
keeps every value within 1e-11 relative of Prometheus' own. Integers stay integers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

SIGNIFICANT_DIGITS = 12


def rounded(data: Any) -> Any:
    """`data` with every float rounded to SIGNIFICANT_DIGITS; the rest unchanged."""
    if isinstance(data, float):
        return float(f"{data:.{SIGNIFICANT_DIGITS}g}")
    if isinstance(data, dict):
        return {key: rounded(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [rounded(value) for value in data]
    return data


# Made once: json.dumps makes an encoder at every call given other than its default options,
# and the compact one encodes the age of every summary served.
_COMPACT = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


def dumps(data: Any, *, indent: int | None = None) -> str:
    """Strict JSON text: compact, or indented for people when `indent` is given."""
    if indent is None:
        return _COMPACT.encode(rounded(data))
    return json.dumps(rounded(data), allow_nan=False, indent=indent)


def encode(data: Any) -> bytes:
    """Strict, compact JSON as UTF-8 bytes, for a response body."""
    return dumps(data).encode()


def encode_members(data: Mapping[str, Any]) -> dict[str, bytes]:
    """Each member of the JSON object `data` encoded on its own, as `"key":value`.

    For an object of which one member changes far more often than the rest: the others stay
    encoded, and join_members makes the object of them and the new one.
    """
    return {key: encode(key) + b":" + encode(value) for key, value in data.items()}


def join_members(members: Iterable[bytes]) -> bytes:
    """The JSON object of members encoded by encode_members, in their order."""
    return b"{" + b",".join(members) + b"}"
