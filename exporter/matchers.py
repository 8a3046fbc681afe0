"""PromQL label matchers (`job="gatewayz-api-production",env=~"prod.*"`): parsed, checked and
written back in one canonical form.

EXPORTER_SELECTOR is such a list. It is checked here before anything starts, and only the
canonical rendering of what was parsed ever reaches a query: a label name, an operator and a
re-quoted string, never the text as typed.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass

OPERATORS = ("=~", "!~", "!=", "=")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_SPACE = re.compile(r"\s*")
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
}
# \x, \u and \U take this many hex digits; octal escapes take three digits.
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}


@dataclass(frozen=True)
class Matcher:
    label: str
    operator: str
    value: str

    def render(self) -> str:
        # A JSON string is a valid PromQL string: the same escapes, UTF-8 kept as it is.
        return f"{self.label}{self.operator}{json.dumps(self.value, ensure_ascii=False)}"


def parse_matchers(text: str) -> tuple[Matcher, ...]:
    """The matchers of `a="x", b=~"y"` (braces around the list allowed), or ValueError."""
    body = text.strip()
    if body.startswith("{") and body.endswith("}"):
        body = body[1:-1]
    matchers: list[Matcher] = []
    position = _skip_space(body, 0)
    while position < len(body):
        matcher, position = _matcher(body, position)
        matchers.append(matcher)
        position = _skip_space(body, position)
        if position < len(body):
            if body[position] != ",":
                raise ValueError(f"expected ',' between matchers at {_excerpt(body, position)}")
            position = _skip_space(body, position + 1)
    return tuple(matchers)


def render_matchers(matchers: tuple[Matcher, ...]) -> str:
    return ",".join(matcher.render() for matcher in matchers)


def canonical_selector(text: str) -> str:
    """The canonical form of a selector's matchers; '' for none."""
    return render_matchers(parse_matchers(text))


def selector_argument(text: str) -> str:
    """The canonical selector of a command-line option (`--selector`), for argparse."""
    try:
        return canonical_selector(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _matcher(body: str, position: int) -> tuple[Matcher, int]:
    name = _LABEL.match(body, position)
    if name is None:
        raise ValueError(f"expected a label name at {_excerpt(body, position)}")
    label = name.group()
    if label == "__name__":
        raise ValueError("__name__ cannot be selected: each query names its own metrics")
    position = _skip_space(body, name.end())
    operator = next((op for op in OPERATORS if body.startswith(op, position)), None)
    if operator is None:
        raise ValueError(f"expected =, !=, =~ or !~ after {label} at {_excerpt(body, position)}")
    value, position = _string(body, _skip_space(body, position + len(operator)))
    if operator in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as error:
            raise ValueError(
                f"{label}{operator}: not a valid regular expression: {error}"
            ) from None
    return Matcher(label, operator, value), position


def _string(body: str, position: int) -> tuple[str, int]:
    """A PromQL string literal: double- or single-quoted with Go escapes, or a raw `...`."""
    quote = body[position : position + 1]
    if quote not in ('"', "'", "`"):
        raise ValueError(f"expected a quoted string at {_excerpt(body, position)}")
    start = position
    position += 1
    chars: list[str] = []
    while position < len(body):
        char = body[position]
        if char == quote:
            return "".join(chars), position + 1
        if char == "\\" and quote != "`":
            decoded, position = _escape(body, position + 1, quote)
            chars.append(decoded)
            continue
        if char == "\n" and quote != "`":
            break
        chars.append(char)
        position += 1
    raise ValueError(f"unterminated string at {_excerpt(body, start)}")


def _escape(body: str, position: int, quote: str) -> tuple[str, int]:
    code = body[position : position + 1]
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code], position + 1
    if code == quote:
        return quote, position + 1
    digits, base = (_HEX_ESCAPES[code], 16) if code in _HEX_ESCAPES else (3, 8)
    start = position + 1 if code in _HEX_ESCAPES else position
    text = body[start : start + digits]
    try:
        if len(text) != digits:
            raise ValueError
        return chr(int(text, base)), start + digits
    except ValueError:
        raise ValueError(f"invalid escape at {_excerpt(body, position - 1)}") from None


def _skip_space(body: str, position: int) -> int:
    match = _SPACE.match(body, position)
    assert match is not None  # \s* always matches
    return match.end()


def _excerpt(body: str, position: int) -> str:
    rest = body[position : position + 20]
    return repr(rest) if rest else "the end"
