"""The exceptions of summary-exporter.

Each carries what a user needs to act on it: which setting, which catalog field, which
upstream and what it answered. Upstream URLs are stored without credentials so that no
message can leak them.

    ExporterError
    ├── SettingsError          an environment variable has an invalid value
    ├── CatalogError           the query catalog file is invalid
    ├── InvalidRequest         a client sent a bad query parameter (answered with 400)
    ├── Busy                   too many on-demand computations at once (answered with 429)
    └── UpstreamError          a query to Prometheus failed; `reason` labels the self-metric
        ├── UpstreamUnreachable  connection refused, DNS failure, reset     reason "connection"
        ├── UpstreamTimeout      no answer within the query timeout         reason "timeout"
        ├── QueryRejected        Prometheus answered status "error"         reason: its errorType
        ├── InvalidResponse      not what the Prometheus API documents    reason "invalid_response"
        │   └── ResponseTooLarge   more bytes than the exporter reads         reason "too_large"
        └── RecordedRuleMissing  no fresh answer of its recording rule, with
                                 EXPORTER_RECORDED_RULES=on          reason "recorded_rule_missing"

A `reason` is always one of REASONS, whatever the upstream sends: it becomes a label value,
and an upstream must not be able to make a new series per answer. The upstream's own words,
shortened, are in the message.
"""

from __future__ import annotations

from typing import Self

# Prometheus' errorType values (web/api/v1/api.go).
PROMETHEUS_ERROR_TYPES = frozenset(
    {
        "timeout",
        "canceled",
        "execution",
        "bad_data",
        "internal",
        "unavailable",
        "not_found",
        "not_acceptable",
    }
)
# What Prometheus answers each errorType with, read backwards: VictoriaMetrics' errorType is
# the HTTP status ("422" for a query it cannot execute), and a proxy's error has none.
_STATUS_REASONS = {
    "400": "bad_data",
    "404": "not_found",
    "406": "not_acceptable",
    "422": "execution",
    "500": "internal",
    "503": "unavailable",
    "504": "timeout",
}
OTHER = "other"
REASONS = PROMETHEUS_ERROR_TYPES | {
    "connection",
    "invalid_response",
    "too_large",
    "recorded_rule_missing",
    OTHER,
}


class ExporterError(Exception):
    """Base class of every error summary-exporter raises on purpose."""


class SettingsError(ExporterError):
    """One or more environment variables are invalid; the message names each of them."""


class CatalogError(ExporterError):
    """The catalog file is invalid; the message names the file and every bad field."""


class InvalidRequest(ExporterError):
    """A request parameter is invalid; the message tells the client what is accepted."""


class Busy(ExporterError):
    """On-demand computation is at its bound; the client should retry after `retry_after` s."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamError(ExporterError):
    """A query could not be answered by the upstream Prometheus-compatible API."""

    reason = OTHER

    def __init__(self, upstream: str, detail: str) -> None:
        super().__init__(f"{upstream}: {detail}")
        self.upstream = upstream
        self.detail = detail

    def detached(self) -> Self:
        """This error without the frames that raised it, to be kept as a record of a failure.

        A traceback keeps every local of those frames alive, a partly read answer included,
        for as long as the error is kept: a snapshot keeps its errors for a whole outage.
        """
        self.__traceback__ = None
        self.__context__ = None
        self.__cause__ = None
        return self


class UpstreamUnreachable(UpstreamError):
    """The upstream could not be connected to (refused, DNS failure, connection reset)."""

    reason = "connection"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the query timeout."""

    reason = "timeout"


class QueryRejected(UpstreamError):
    """The upstream answered `status: error`, e.g. `bad_data` for a broken query.

    `error_type` is the upstream's errorType, shortened, or None when it sent none; `reason` is
    what it means among REASONS.
    """

    def __init__(self, upstream: str, error_type: str | None, detail: str, *, status: int) -> None:
        shown = f"http_{status}" if error_type is None else error_type
        super().__init__(upstream, f"{shown}: {detail}")
        self.error_type = error_type
        self.reason = rejection_reason(error_type, status)


class InvalidResponse(UpstreamError):
    """The upstream's answer is not the JSON the Prometheus HTTP API documents."""

    reason = "invalid_response"


class ResponseTooLarge(InvalidResponse):
    """An answer, or the answers of one refresh together, exceed what the exporter reads."""

    reason = "too_large"


class RecordedRuleMissing(UpstreamError):
    """A query's recording rule has no fresh answer, and EXPORTER_RECORDED_RULES=on forbids
    asking its PromQL instead."""

    reason = "recorded_rule_missing"


def rejection_reason(error_type: str | None, status: int) -> str:
    """The reason of a `status: error` answer: Prometheus' errorType; for a numeric one
    (VictoriaMetrics) or none, what Prometheus means by that HTTP status; else `other`."""
    if error_type in PROMETHEUS_ERROR_TYPES:
        return error_type
    return _STATUS_REASONS.get(str(status) if error_type is None else error_type, OTHER)
