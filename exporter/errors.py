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
        └── InvalidResponse      not what the Prometheus API documents    reason "invalid_response"
"""

from __future__ import annotations


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

    reason = "upstream"

    def __init__(self, upstream: str, detail: str) -> None:
        super().__init__(f"{upstream}: {detail}")
        self.upstream = upstream
        self.detail = detail


class UpstreamUnreachable(UpstreamError):
    """The upstream could not be connected to (refused, DNS failure, connection reset)."""

    reason = "connection"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer within the query timeout."""

    reason = "timeout"


class QueryRejected(UpstreamError):
    """The upstream answered `status: error`, e.g. `bad_data` for a broken query."""

    def __init__(self, upstream: str, error_type: str, detail: str) -> None:
        super().__init__(upstream, f"{error_type}: {detail}")
        self.error_type = error_type
        self.reason = error_type


class InvalidResponse(UpstreamError):
    """The upstream's answer is not the JSON the Prometheus HTTP API documents."""

    reason = "invalid_response"
