"""Label matchers (EXPORTER_SELECTOR): parsed strictly, written back in one canonical form."""

from __future__ import annotations

import re

import pytest

from exporter.matchers import Matcher, canonical_selector, parse_matchers


def test_matchers_of_every_operator_are_parsed_in_order() -> None:
    assert parse_matchers('job="api", env!="dev", region=~"eu-.*", pod!~"canary-.+"') == (
        Matcher("job", "=", "api"),
        Matcher("env", "!=", "dev"),
        Matcher("region", "=~", "eu-.*"),
        Matcher("pod", "!~", "canary-.+"),
    )


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ('job="gatewayz-api-production"', 'job="gatewayz-api-production"'),
        ('{job="a"}', 'job="a"'),
        ('  job = "a" ,  env="b",  ', 'job="a",env="b"'),
        ("job='a'", 'job="a"'),
        ("job=`a\\d`", 'job="a\\\\d"'),
        ('job="say \\"hi\\""', 'job="say \\"hi\\""'),
        ('job="\\x41\\u00e9\\101\\n"', 'job="AéA\\n"'),
        ('job="café"', 'job="café"'),
        ("", ""),
        ("   ", ""),
        ("{}", ""),
    ],
)
def test_the_canonical_form_is_double_quoted_and_compact(text: str, canonical: str) -> None:
    assert canonical_selector(text) == canonical


def test_the_canonical_form_reads_back_to_the_same_matchers() -> None:
    text = 'job="a\\\\b",env=~"x|\\"y\\"",name!="tab\\there"'
    assert parse_matchers(canonical_selector(text)) == parse_matchers(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("job=prod", "expected a quoted string at 'prod'"),
        ('job="prod', "unterminated string"),
        ('job "prod"', "expected =, !=, =~ or !~ after job"),
        ('job=="prod"', "expected a quoted string"),
        ('1job="a"', "expected a label name at '1job"),
        ('job="a" env="b"', "expected ',' between matchers"),
        ('job="a",,env="b"', "expected a label name at ',env"),
        ('__name__="up"', "__name__ cannot be selected"),
        ('job=~"(prod"', "job=~: not a valid regular expression"),
        ('job="\\q"', "invalid escape"),
        ('job="\\x4"', "invalid escape"),
        ('job="a"}', "expected ',' between matchers at '}'"),
    ],
)
def test_a_bad_selector_is_rejected_saying_where(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        parse_matchers(text)


def test_a_newline_inside_a_quoted_string_is_not_allowed() -> None:
    with pytest.raises(ValueError, match="unterminated string"):
        parse_matchers('job="a\nb"')
