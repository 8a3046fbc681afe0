"""Health for people: the catalog's checks and the exporter's own, judged on one snapshot.

Pure functions: a snapshot, the environment and the staleness limit in; statuses out. The
values judged are the snapshot's (PromQL's); the only arithmetic here is the share of one
field in another, for checks that declare `percent_of`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from exporter.catalog import Catalog, CheckSpec, Threshold, Unit
from exporter.environment import Environment
from exporter.snapshot import AT_LEAST, Snapshot, Value, format_instant

NO_SNAPSHOT = "the first refresh has not finished yet"


class Status(StrEnum):
    OK = "ok"
    DEGRADED = "degraded"
    CRITICAL = "critical"
    # A check without a value (a null field, 0 of 0); it does not change the overall status.
    UNKNOWN = "unknown"


_SEVERITY = {Status.OK: 0, Status.UNKNOWN: 0, Status.DEGRADED: 1, Status.CRITICAL: 2}
# For people: what is wrong, then what cannot be told, then what is fine.
_WORST_FIRST = {Status.CRITICAL: 0, Status.DEGRADED: 1, Status.UNKNOWN: 2, Status.OK: 3}
_SUFFIXES = {
    Unit.MS: " ms",
    Unit.PERCENT: " %",
    Unit.PER_MINUTE: " /min",
    Unit.TOKENS: " tokens",
    Unit.CREDITS: " credits",
    Unit.USD: " USD",
}


def format_number(value: float) -> str:
    """A number for people: integers as they are, others to four significant digits."""
    if isinstance(value, int) or not math.isfinite(value):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def format_value(value: Value | str, unit: Unit | None = None, bound: str | None = None) -> str:
    """A field value (or a table's cell) for people, with its unit and "≥" when it is only a
    lower bound; rounding happens here and only here."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        if not value:
            return "none"
        if isinstance(value[0], dict):
            return f"{len(value)} row{'s' if len(value) > 1 else ''}"
        return ", ".join(str(item) for item in value)
    suffix = "" if unit is None else _SUFFIXES.get(unit, "")
    return ("≥ " if bound == AT_LEAST else "") + format_number(value) + suffix


def format_age(seconds: float) -> str:
    """A duration for people: 12 s, 3 min 20 s, 2 h 5 min, 3 d 4 h."""
    total = round(max(0.0, seconds))
    if total < 60:
        return f"{total} s"
    for size, unit, smaller, small_unit in ((86_400, "d", 3600, "h"), (3600, "h", 60, "min")):
        if total >= size:
            rest = (total % size) // smaller
            return f"{total // size} {unit}" + (f" {rest} {small_unit}" if rest else "")
    seconds_left = total % 60
    return f"{total // 60} min" + (f" {seconds_left} s" if seconds_left else "")


@dataclass(frozen=True)
class CheckResult:
    """One check judged: its value, the limits it was compared with, and the PromQL behind it."""

    name: str
    help: str
    status: Status
    value: float | None = None
    display: str = "—"
    threshold: str = ""
    limits: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    promql: tuple[str, ...] = ()
    reason: str | None = None
    # Who is behind the value (the providers, pools or replicas its `names` query lists), the
    # worst first, and the sentence naming them: "open: groq".
    names: tuple[str, ...] = ()
    detail: str | None = None

    @property
    def failing(self) -> bool:
        """Degraded or critical: something is wrong."""
        return self.status in _FAILING

    def document(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "value": self.value,
            "display": self.display,
            "threshold": self.threshold,
            "limits": {level: dict(limit) for level, limit in self.limits.items()},
            "promql": list(self.promql),
            "reason": self.reason,
            "names": list(self.names),
            "detail": self.detail,
            "help": self.help,
        }


@dataclass(frozen=True)
class Health:
    """The overall status (ok, degraded or critical) and every check behind it."""

    status: Status
    checks: tuple[CheckResult, ...]
    snapshot: Snapshot | None
    liveness: Liveness

    def document(self) -> dict[str, Any]:
        snapshot = self.snapshot
        return {
            "status": self.status.value,
            "timestamp": None if snapshot is None else format_instant(snapshot.data_instant),
            "window": None if snapshot is None else snapshot.window,
            "source": None if snapshot is None else snapshot.source,
            "liveness": self.liveness.document(),
            "checks": {check.name: check.document() for check in self.checks},
        }

    def worst_first(self) -> tuple[CheckResult, ...]:
        """The checks critical first, then degraded, unknown and ok; in order within each."""
        return tuple(sorted(self.checks, key=lambda check: _WORST_FIRST[check.status]))


@dataclass(frozen=True)
class Liveness:
    """Whether the gateway itself is up, from the catalog's liveness checks: the worst of those
    that have a value; unknown when none has (or the catalog has none)."""

    status: Status
    checks: tuple[CheckResult, ...]

    @property
    def reason(self) -> str | None:
        """What is wrong, for a first line: each failing liveness check and its value."""
        failing = [check for check in self.checks if check.status in _FAILING]
        if failing:
            return "; ".join(f"{check.name} {check.display}" for check in failing)
        if self.status is Status.UNKNOWN:
            reasons = [check.reason for check in self.checks if check.reason]
            return "; ".join(reasons) if reasons else "the catalog has no liveness checks"
        return None

    @property
    def down(self) -> bool:
        return self.status is Status.CRITICAL

    def document(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "reason": self.reason,
            "checks": {check.name: check.status.value for check in self.checks},
        }


_FAILING = (Status.DEGRADED, Status.CRITICAL)


def _liveness_of(checks: list[CheckResult]) -> Liveness:
    known = [check for check in checks if check.status is not Status.UNKNOWN]
    if not known:
        return Liveness(Status.UNKNOWN, tuple(checks))
    worst = max(known, key=lambda check: _SEVERITY[check.status])
    return Liveness(worst.status, tuple(checks))


def liveness(catalog: Catalog, snapshot: Snapshot | None) -> Liveness:
    """The gateway's liveness on `snapshot`, judged by the catalog's liveness checks."""
    environment = Environment()  # liveness checks are never production_only
    return _liveness_of(
        [
            _catalog_check(name, spec, catalog, snapshot, environment)
            for name, spec in catalog.checks.items()
            if spec.liveness
        ]
    )


def assess(
    catalog: Catalog,
    snapshot: Snapshot | None,
    environment: Environment,
    *,
    as_of: float,
    max_staleness: float | None,
) -> Health:
    """Every check on `snapshot` as of the instant `as_of`.

    `max_staleness` None leaves out the snapshot-age check, for a snapshot made just now.
    """
    checks = [
        *(
            _catalog_check(name, spec, catalog, snapshot, environment)
            for name, spec in catalog.checks.items()
        ),
        _upstream_check(snapshot),
        *([] if snapshot is None or snapshot.recorded is None else [_recorded_check(snapshot)]),
        *([] if max_staleness is None else [_age_check(snapshot, as_of, max_staleness)]),
        _test_mode_check(environment),
    ]
    worst = max((_SEVERITY[check.status] for check in checks), default=0)
    overall = {0: Status.OK, 1: Status.DEGRADED, 2: Status.CRITICAL}[worst]
    gateway = _liveness_of(
        [c for c in checks if (spec := catalog.checks.get(c.name)) and spec.liveness]
    )
    return Health(overall, tuple(checks), snapshot, gateway)


def _catalog_check(
    name: str,
    check: CheckSpec,
    catalog: Catalog,
    snapshot: Snapshot | None,
    environment: Environment,
) -> CheckResult:
    unit = _unit(check, catalog)
    limits = {
        level: threshold
        for level, threshold in (("degraded", check.degraded), ("critical", check.critical))
        if threshold is not None
    }
    described = ", ".join(
        f"{level} {_describe(threshold, unit)}" for level, threshold in limits.items()
    )
    base = CheckResult(
        name=name,
        help=check.help,
        status=Status.UNKNOWN,
        threshold=described + (" (in production)" if check.production_only else ""),
        limits={level: threshold.document() for level, threshold in limits.items()},
        promql=() if snapshot is None else _promql(check, catalog, snapshot.window),
    )
    if snapshot is None:
        return replace(base, reason=NO_SNAPSHOT)
    named = snapshot.names.get(name)
    if check.names is not None and named is not None and named.series:
        base = replace(
            base,
            names=tuple(entity for entity, _ in named.series),
            detail=_detail(check.names.prefix, named.series, unit if check.names.values else None),
        )
    measured = _measure(name, check, snapshot, unit)
    if isinstance(measured, str):
        return replace(base, reason=measured)
    value, display, bound = measured
    status, reason = _judge(check, value, display, bound)
    if status in _FAILING and check.production_only and not environment.production:
        reason = (
            f"would be {status.value} in production; expected here "
            f"(APP_ENV={environment.app_env or 'unset'})"
        )
        status = Status.OK
    return replace(base, status=status, value=value, display=display, reason=reason)


# Names a detail shows at most; the check's `names` list holds them all.
DETAIL_NAMES = 5


def _detail(prefix: str, named: tuple[tuple[str, float], ...], unit: Unit | None) -> str:
    """ "open: groq, together", or with values "failing: groq 100 %, openai 16.67 %"."""
    shown = [
        entity if unit is None else f"{entity} {format_value(value, unit)}"
        for entity, value in named[:DETAIL_NAMES]
    ]
    more = len(named) - DETAIL_NAMES
    return f"{prefix}: {', '.join(shown)}" + (f" and {more} more" if more > 0 else "")


def _judge(
    check: CheckSpec, value: float, display: str, bound: str | None
) -> tuple[Status, str | None]:
    """The worst level the value is past for certain. A lower bound is past an upward limit
    it crosses, and short of a downward limit it does not cross; otherwise it may or may not
    be past the limit, and the check cannot say OK."""
    uncertain: list[str] = []
    for status, threshold in ((Status.CRITICAL, check.critical), (Status.DEGRADED, check.degraded)):
        if threshold is None:
            continue
        crossed = threshold.crossed_by(value)
        if bound is None or crossed == threshold.upward:
            if crossed:
                note = (
                    f"may be {uncertain[0]}: {display} is only a lower bound" if uncertain else None
                )
                return status, note
            continue
        uncertain.append(status.value)
    if uncertain:
        return Status.UNKNOWN, f"{display} is only a lower bound; it may be {uncertain[0]}"
    return Status.OK, None


def _unit(check: CheckSpec, catalog: Catalog) -> Unit:
    if check.percent_of is not None:
        return Unit.PERCENT
    if check.field is not None:
        spec = catalog.field(check.field)
        assert spec is not None  # the catalog checks that every referenced field exists
        return spec.unit
    return check.unit or Unit.COUNT


def _promql(check: CheckSpec, catalog: Catalog, window: str) -> tuple[str, ...]:
    names = () if check.names is None else (check.names.render(window),)
    if check.query is not None:
        return (check.answer_spec().render(window), *names)
    references = [ref for ref in (check.field, check.percent_of) if ref is not None]
    specs = [catalog.field(reference) for reference in references]
    return (*(spec.render(window) for spec in specs if spec is not None), *names)


def _measure(
    name: str, check: CheckSpec, snapshot: Snapshot, unit: Unit
) -> tuple[float, str, str | None] | str:
    """The value to judge, how to show it and whether it is only a lower bound; or why there
    is no value."""
    if check.field is None:
        answer = snapshot.checks.get(name)
        if answer is None:
            return "not asked in this refresh"
        value = answer.value
        if not isinstance(value, int | float):
            return answer.reason or "no value"
        return float(value), format_value(value, unit, answer.bound), answer.bound
    part = _number(snapshot, check.field)
    if isinstance(part, str):
        return part
    value, bound = part
    if check.percent_of is None:
        return value, format_value(value, unit, bound), bound
    whole = _number(snapshot, check.percent_of)
    if isinstance(whole, str):
        return whole
    if whole[1] is not None:
        return f"{check.percent_of} is only a lower bound ({format_number(whole[0])})"
    if whole[0] == 0:
        return f"{check.percent_of} is 0 ({format_number(value)} of 0)"
    share = 100 * value / whole[0]
    shown = f"{format_value(value, None, bound)} of {format_number(whole[0])}"
    return share, f"{shown} ({format_value(share, unit, bound)})", bound


def _number(snapshot: Snapshot, reference: str) -> tuple[float, str | None] | str:
    domain, _, name = reference.partition(".")
    answer = snapshot.fields.get((domain, name))
    if answer is None:
        return f"{reference} is not in this snapshot"
    if not isinstance(answer.value, int | float):
        return f"{reference} is null: {answer.reason or 'no value'}"
    return answer.value, answer.bound


def _describe(threshold: Threshold, unit: Unit) -> str:
    return f"{threshold.word.replace('_', ' ')} {format_value(threshold.limit, unit)}"


def _upstream_check(snapshot: Snapshot | None) -> CheckResult:
    base = CheckResult(
        name="upstream",
        help="The upstream answered the latest attempt at the catalog's queries.",
        status=Status.UNKNOWN,
        threshold="critical when unreachable",
    )
    if snapshot is None:
        return replace(base, reason=NO_SNAPSHOT)
    # Recording rules read without an answer (EXPORTER_RECORDED_RULES=on) are not a dead
    # upstream: the recorded_rules check tells that story.
    read = snapshot.recorded
    if snapshot.reached_upstream or (read is not None and read.error is None):
        return replace(base, status=Status.OK, value=1.0, display="reachable")
    errors = snapshot.errors()
    reason = str(errors[0][1]) if errors else "no query was answered"
    return replace(base, status=Status.CRITICAL, value=0.0, display="unreachable", reason=reason)


def _recorded_check(snapshot: Snapshot) -> CheckResult:
    """How many fields the recording rules answered; with EXPORTER_RECORDED_RULES=on, a rule
    without a fresh answer is critical (its fields have no value from PromQL either)."""
    read = snapshot.recorded
    assert read is not None  # only a snapshot that read the rules has this check
    recorded = sum(f.recorded for f in snapshot.fields.values())
    base = CheckResult(
        name="recorded_rules",
        help="Fields answered by the catalog's recording rules (EXPORTER_RECORDED_RULES="
        f"{read.mode}) rather than their PromQL.",
        status=Status.OK,
        threshold="critical when a rule has no fresh answer with EXPORTER_RECORDED_RULES=on",
        value=float(recorded),
        display=f"{recorded} of {len(snapshot.fields)} fields",
    )
    missing = read.missing
    if read.error is not None:
        # In auto, PromQL answered instead; the reason says why the rules were not read.
        base = replace(base, reason=f"reading the rules failed: {read.error}")
    if read.mode == "on" and missing:
        reason = f"{len(missing)} of {len(read.rules.rules)} rules: {read.failure(missing[0])}"
        return replace(base, status=Status.CRITICAL, reason=reason)
    return base


def _age_check(snapshot: Snapshot | None, as_of: float, max_staleness: float) -> CheckResult:
    base = CheckResult(
        name="snapshot_age",
        help="Age of the newest values served; past EXPORTER_MAX_STALENESS they are too old.",
        status=Status.DEGRADED,
        threshold=f"critical above {format_age(max_staleness)} (EXPORTER_MAX_STALENESS)",
        limits={"critical": {"above": max_staleness}},
    )
    if snapshot is None:
        return replace(base, display="none yet", reason=NO_SNAPSHOT)
    age = round(max(0.0, as_of - snapshot.data_instant), 3)
    status = Status.CRITICAL if age > max_staleness else Status.OK
    return replace(base, status=status, value=age, display=format_age(age))


def _test_mode_check(environment: Environment) -> CheckResult:
    base = CheckResult(
        name="test_mode",
        help="The gateway's test mode (APP_ENV testing or test, or TESTING true), never in"
        " production.",
        status=Status.OK,
        threshold="critical when on in production",
    )
    if environment.testing_in_production:
        reason = f"TESTING={environment.testing_flag!r} with APP_ENV={environment.app_env!r}"
        return replace(base, status=Status.CRITICAL, display="on in production", reason=reason)
    if environment.testing:
        return replace(base, display="on (not production)")
    return replace(base, display="off")
