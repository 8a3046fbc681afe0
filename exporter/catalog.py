"""The query catalog: which PromQL answers each field of the summary, loaded from YAML."""

from __future__ import annotations

import re
from enum import StrEnum
from importlib import resources
from pathlib import Path
from string import Template
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    FiniteFloat,
    StringConstraints,
    ValidationError,
    model_validator,
)

from exporter.durations import format_duration, parse_duration
from exporter.errors import CatalogError

BUILTIN = "catalog.yaml"
WINDOW_PLACEHOLDER = "window"
SELF_METRICS_PREFIX = "summary_exporter_"

ENVIRONMENT_INFO = "summary_environment_info"

Name = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
# A field named by its domain: `http.error_rate`.
FieldRef = Annotated[
    str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$", max_length=129)
]


class Kind(StrEnum):
    INTEGER = "integer"
    NUMBER = "number"
    LABELS = "labels"


class Unit(StrEnum):
    COUNT = "count"
    MS = "ms"
    PERCENT = "percent"
    PER_MINUTE = "per_minute"
    SCORE = "score"
    TOKENS = "tokens"
    CREDITS = "credits"


# How a JSON unit becomes the gauge's base unit: the factor, and the gauge name's suffix.
_BASE_UNITS: dict[Unit, tuple[float, str, str]] = {
    Unit.MS: (0.001, "_ms", "_seconds"),
    Unit.PERCENT: (0.01, "_rate", "_ratio"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldSpec(_Strict):
    """One field of the summary and the PromQL that answers it."""

    query: str = Field(min_length=1)
    kind: Kind
    unit: Unit
    help: str = Field(min_length=1)
    no_series_means_zero: bool = False
    when_empty: str = "the query returned no series"
    denominator: Name | None = None
    when_zero_denominator: str | None = None
    label: str | None = None
    gauge: Name | None = None

    @model_validator(mode="after")
    def _consistent(self) -> FieldSpec:
        _check_template(self.query)
        if self.kind is Kind.LABELS and (self.label is None or self.gauge is None):
            raise ValueError("a labels field needs `label` (what to list) and `gauge` (its values)")
        if self.kind is not Kind.LABELS and self.label is not None:
            raise ValueError("`label` applies to kind labels only")
        if (self.denominator is None) != (self.when_zero_denominator is None):
            raise ValueError("`denominator` and `when_zero_denominator` go together")
        return self

    def render(self, window: str) -> str:
        """The PromQL for one window: a window reaches PromQL only as the canonical rendering
        of its parsed length (`7d` as `1w`), never as written; ValueError when it is none."""
        canonical = format_duration(parse_duration(window))
        return Template(self.query).substitute({WINDOW_PLACEHOLDER: canonical})

    @property
    def windowed(self) -> bool:
        """Whether the query looks back over the window, rather than at one instant."""
        return WINDOW_PLACEHOLDER in Template(self.query).get_identifiers()

    def gauge_name(self, domain: str, field: str) -> str:
        """`summary_<domain>_<field>` in base units; a trailing `_total` is dropped, since
        that suffix belongs to counters (`tokens_used_total` is `summary_models_tokens_used`)."""
        suffix = self.gauge or field
        if self.gauge is None and self.unit in _BASE_UNITS:
            _, json_suffix, base_suffix = _BASE_UNITS[self.unit]
            suffix = suffix.removesuffix(json_suffix) + base_suffix
        return f"summary_{domain}_{suffix}".removesuffix("_total")

    @property
    def gauge_factor(self) -> float:
        """Multiplies the JSON value into the gauge's base unit (seconds, ratio)."""
        return _BASE_UNITS[self.unit][0] if self.unit in _BASE_UNITS else 1.0


class DomainSpec(_Strict):
    help: str = ""
    fields: dict[Name, FieldSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _denominators_exist(self) -> DomainSpec:
        for name, spec in self.fields.items():
            if spec.denominator is not None and spec.denominator not in self.fields:
                raise ValueError(f"{name}: denominator {spec.denominator!r} is not a field here")
        return self


class Threshold(_Strict):
    """A limit a check's value is past: above `above`, or at least `at_least`."""

    above: FiniteFloat | None = None
    at_least: FiniteFloat | None = None

    @model_validator(mode="after")
    def _one_limit(self) -> Threshold:
        if (self.above is None) == (self.at_least is None):
            raise ValueError("give exactly one of `above` or `at_least`")
        return self

    @property
    def limit(self) -> float:
        limit = self.above if self.above is not None else self.at_least
        assert limit is not None  # the validator requires one of them
        return limit

    def crossed_by(self, value: float) -> bool:
        return value > self.limit if self.above is not None else value >= self.limit

    def document(self) -> dict[str, float]:
        return {"above": self.limit} if self.above is not None else {"at_least": self.limit}


_QUERY_CHECK_KEYS = frozenset({"unit", "no_series_means_zero", "when_empty"})


class CheckSpec(_Strict):
    """A health check: a summary field, or its own PromQL, against degraded/critical limits."""

    help: str = Field(min_length=1)
    field: FieldRef | None = None
    percent_of: FieldRef | None = None
    query: str | None = Field(default=None, min_length=1)
    unit: Unit | None = None
    no_series_means_zero: bool = False
    when_empty: str = "the query returned no series"
    production_only: bool = False
    degraded: Threshold | None = None
    critical: Threshold | None = None

    @model_validator(mode="after")
    def _consistent(self) -> CheckSpec:
        if (self.field is None) == (self.query is None):
            raise ValueError("give exactly one of `field` (domain.field) or `query` (PromQL)")
        if self.query is not None:
            _check_template(self.query)
        elif answer_keys := sorted(self.model_fields_set & _QUERY_CHECK_KEYS):
            raise ValueError(f"{answer_keys} apply to query checks; a field check reads its field")
        if self.percent_of is not None and self.field is None:
            raise ValueError("`percent_of` applies to field checks")
        if self.degraded is None and self.critical is None:
            raise ValueError("give `degraded`, `critical` or both")
        if self.degraded and self.critical and self.degraded.limit > self.critical.limit:
            raise ValueError("the degraded limit is above the critical one")
        return self

    def answer_spec(self) -> FieldSpec:
        """How a query check's answer is shaped: like a number field, never invented."""
        assert self.query is not None  # only query checks have an answer of their own
        return FieldSpec(
            query=self.query,
            kind=Kind.NUMBER,
            unit=self.unit or Unit.COUNT,
            help=self.help,
            no_series_means_zero=self.no_series_means_zero,
            when_empty=self.when_empty,
        )


class Catalog(_Strict):
    domains: dict[Name, DomainSpec] = Field(min_length=1)
    checks: dict[Name, CheckSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _checks_read_numeric_fields(self) -> Catalog:
        for name, check in self.checks.items():
            for reference in (check.field, check.percent_of):
                if reference is None:
                    continue
                spec = self.field(reference)
                if spec is None:
                    raise ValueError(f"checks.{name}: {reference} is not a field of the catalog")
                if spec.kind is Kind.LABELS:
                    raise ValueError(f"checks.{name}: {reference} is a list, not a number")
        return self

    @model_validator(mode="after")
    def _distinct_gauges(self) -> Catalog:
        seen: dict[str, str] = {}
        for domain, name, spec in self.fields():
            gauge = spec.gauge_name(domain, name)
            if gauge.startswith(SELF_METRICS_PREFIX) or gauge == ENVIRONMENT_INFO:
                raise ValueError(f"{domain}.{name}: gauge {gauge} would clash with self-metrics")
            if gauge in seen:
                raise ValueError(f"{domain}.{name}: gauge {gauge} is also {seen[gauge]}'s gauge")
            seen[gauge] = f"{domain}.{name}"
        return self

    def field(self, reference: str) -> FieldSpec | None:
        """The field named `domain.field`, or None."""
        domain, _, name = reference.partition(".")
        domain_spec = self.domains.get(domain)
        return None if domain_spec is None else domain_spec.fields.get(name)

    def fields(self) -> list[tuple[str, str, FieldSpec]]:
        """(domain, field, spec) for every field, in catalog order."""
        return [
            (domain, name, spec)
            for domain, domain_spec in self.domains.items()
            for name, spec in domain_spec.fields.items()
        ]


def _check_template(query: str) -> None:
    template = Template(query)
    if not template.is_valid():
        raise ValueError("query has a malformed '$' placeholder (use $window, or $$ for '$')")
    unknown = set(template.get_identifiers()) - {WINDOW_PLACEHOLDER}
    if unknown:
        raise ValueError(f"query uses unknown placeholders {sorted(unknown)}; only $window")
    if not _balanced(query):
        raise ValueError("query has unbalanced brackets or quotes")


def _balanced(query: str) -> bool:
    """Brackets balance outside string literals; catches most broken templates at start."""
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    quote: str | None = None
    escaped = False
    for char in query:
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack and quote is None


def _location(loc: tuple[int | str, ...]) -> str:
    # pydantic appends the validator's name for errors raised in model validators; drop it.
    return ".".join(
        str(part) for part in loc if not re.fullmatch(r"function-after\[.*\]", str(part))
    )


def parse_catalog(text: str, source: str) -> Catalog:
    """A validated catalog, or CatalogError naming `source` and every invalid field."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CatalogError(f"catalog {source}: not valid YAML: {error}") from None
    try:
        return Catalog.model_validate(data)
    except ValidationError as error:
        problems = [
            f"{_location(item['loc']) or '(top level)'}: {item['msg']}"
            for item in error.errors(include_url=False)
        ]
        raise CatalogError(f"catalog {source}: " + "; ".join(problems)) from None


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at `path`, or the built-in one shipped in the package."""
    if path is None:
        text = resources.files("exporter").joinpath(BUILTIN).read_text(encoding="utf-8")
        return parse_catalog(text, f"(built-in {BUILTIN})")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogError(f"catalog {path}: cannot read: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CatalogError(f"catalog {path}: not UTF-8 text") from None
    return parse_catalog(text, str(path))
