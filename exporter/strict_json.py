"""The one JSON encoder of every document the exporter writes: strict, and without float noise.

Strict: NaN and ±Inf are refused (`allow_nan=False`), since every non-finite answer was already
turned into null with its reason. Without noise: Prometheus' arithmetic leaves binary residue
such as `1.0999999999999999` for 1.1, so floats are written with 12 significant digits, which
keeps every value within 1e-11 relative of Prometheus' own. Integers stay integers.
"""

from __future__ import annotations

import json
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


def dumps(data: Any, *, indent: int | None = None, already_rounded: bool = False) -> str:
    """Strict JSON text: compact, or indented for people when `indent` is given.

    `already_rounded`: `data` is the result of rounded(), which need not walk it again.
    """
    separators = (",", ":") if indent is None else None
    data = data if already_rounded else rounded(data)
    return json.dumps(data, allow_nan=False, indent=indent, separators=separators)


def encode(data: Any, *, already_rounded: bool = False) -> bytes:
    """Strict, compact JSON as UTF-8 bytes, for a response body."""
    return dumps(data, already_rounded=already_rounded).encode()
