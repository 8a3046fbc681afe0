"""Settings from `EXPORTER_*` environment variables, validated before anything listens."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from exporter.durations import parse_duration
from exporter.errors import SettingsError
from exporter.matchers import canonical_selector

ENV_PREFIX = "EXPORTER_"
# A catalog table's `limit` that means EXPORTER_TOP_MODELS rather than a number of rows.
TOP_MODELS = "top_models"
_FILES = ("catalog", "bearer_token_file", "tls_ca_file", "tls_cert_file", "tls_key_file")


class Settings(BaseSettings):
    """Every knob of the exporter; the field name upper-cased after `EXPORTER_` is its variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    prometheus_url: str = "http://localhost:9090"
    host: str = "0.0.0.0"
    port: int = Field(default=9199, ge=1, le=65535)
    # At least a second: each refresh asks every catalog query, and Prometheus' data does
    # not change faster than its scrapes, which are seconds apart.
    refresh_interval: float = Field(default=15.0, ge=1, le=86_400)
    query_timeout: float = Field(default=5.0, gt=0, le=3_600)
    max_staleness: float | None = Field(default=None, gt=0)
    max_window: str = "30d"  # before `window`, whose validator compares with it
    window: str = "5m"
    catalog: Path | None = None
    # Label matchers every query of the catalog applies to the gateway's series and to `up`,
    # e.g. job="gatewayz-api-production": one environment of a Prometheus that scrapes several.
    selector: str = ""
    log_format: Literal["logfmt", "json"] = "logfmt"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Most of the catalog's 70 distinct queries in one wave; Prometheus queues beyond its own
    # limit (--query.max-concurrency, 20) anyway (measured in docs/benchmarks.md).
    max_concurrent_queries: int = Field(default=64, ge=1, le=256)
    on_demand_cache_size: int = Field(default=64, ge=1, le=10_000)
    max_concurrent_on_demand: int = Field(default=4, ge=1, le=256)
    # The catalog's answers take about 13 KB a refresh; these caps bound what an upstream,
    # however it answers, can make the exporter hold (docs/reliability.md).
    max_response_bytes: int = Field(default=256 * 1024, ge=1024)
    max_refresh_bytes: int = Field(default=1024 * 1024, ge=1024)
    on_demand_per_minute: int = Field(default=60, ge=1, le=100_000)
    shutdown_grace: float = Field(default=10.0, ge=0, le=300)
    # Rows of the per-model table, and of any table at most: they are also label values of
    # gauges, so they stay bounded.
    top_models: int = Field(default=10, ge=1, le=1000)
    max_entities: int = Field(default=50, ge=1, le=1000)
    # Client connections: at most this many open (as Prometheus' --web.max-connections),
    # fewer when the open-files limit is lower; and a connection whose first request has not
    # come within header_timeout seconds is closed.
    max_connections: int = Field(default=512, ge=8, le=1_000_000)
    header_timeout: float = Field(default=5.0, gt=0, le=300)
    # Whether the background refresh reads the catalog's recording rules (`summary-exporter
    # rules`): auto reads those with a fresh answer and asks PromQL for the others; on never
    # asks PromQL for the default window (a missing rule is an error); off never reads them.
    recorded_rules: Literal["auto", "on", "off"] = "auto"
    # Seconds the rules' newest evaluation may be old to be read: their group's interval
    # (30 s as generated) plus the time one evaluation takes, with room to spare.
    recorded_max_age: float = Field(default=60.0, gt=0, le=86_400)

    # How to reach the upstream(s).
    bearer_token: SecretStr | None = None
    bearer_token_file: Path | None = None
    basic_auth_username: str | None = None
    basic_auth_password: SecretStr | None = None
    # JSON, e.g. {"X-Scope-OrgID": "t1"}; decoded by `_json_object`, which names the variable.
    headers: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_insecure_skip_verify: bool = False
    partial_response: bool | None = None  # Thanos: sent only when set

    # Who may read the summary endpoints (off by default; health probes are always open).
    auth_token: SecretStr | None = None
    auth_username: str | None = None
    auth_password: SecretStr | None = None
    cors_origins: str = ""  # comma-separated origins allowed to read from a browser

    @field_validator("prometheus_url")
    @classmethod
    def _http_urls(cls, value: str) -> str:
        # No message repeats a URL: what is wrong with it may be where its password is.
        urls = [url.strip().rstrip("/") for url in value.split(",") if url.strip()]
        if not urls:
            raise ValueError("must name at least one URL")
        for position, url in enumerate(urls, 1):
            problem = url_problem(url)
            if problem:
                which = "the URL" if len(urls) == 1 else f"URL {position} of {len(urls)}"
                # A comma in a password splits the URL in two, neither of them with an "@".
                hint = f"; {PERCENT_ENCODE}" if "@" in value and "@" not in url else ""
                raise ValueError(f"{which} {problem}{hint}")
        return ",".join(urls)

    @field_validator(*_FILES, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # As a manifest's `EXPORTER_CATALOG: ""` means: no file, not the current directory.
        return None if value == "" else value

    @field_validator(*_FILES)
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("headers", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            decoded = json.loads(value)
        except ValueError:
            decoded = None
        if not isinstance(decoded, dict):
            raise ValueError('must be a JSON object such as {"X-Scope-OrgID": "tenant-1"}')
        return decoded

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, header in value.items():
            if not re.fullmatch(r"[A-Za-z0-9-]{1,100}", name) or any(c in header for c in "\r\n"):
                raise ValueError(f"header {name[:40]!r} is not a plain HTTP header")
            if name.lower() == "authorization":
                raise ValueError("set credentials with EXPORTER_BEARER_TOKEN or basic auth")
        return value

    @model_validator(mode="after")
    def _one_way_to_authenticate(self) -> Settings:
        ways = [
            self.bearer_token is not None,
            self.bearer_token_file is not None,
            self.basic_auth_username is not None,
        ]
        if sum(ways) > 1 or (any(ways) and "@" in self.prometheus_url):
            raise ValueError(
                f"choose one of {ENV_PREFIX}BEARER_TOKEN, {ENV_PREFIX}BEARER_TOKEN_FILE,"
                f" {ENV_PREFIX}BASIC_AUTH_USERNAME and user:password in {ENV_PREFIX}PROMETHEUS_URL"
            )
        if (self.auth_username is None) != (self.auth_password is None):
            raise ValueError(f"{ENV_PREFIX}AUTH_USERNAME and {ENV_PREFIX}AUTH_PASSWORD go together")
        return self

    @property
    def prometheus_urls(self) -> list[str]:
        return self.prometheus_url.split(",")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, value: str) -> str:
        for position, origin in enumerate(_split(value), 1):
            if url_problem(origin) or urlsplit(origin).path or "@" in origin:
                raise ValueError(
                    f"origin {position} is not a browser origin such as"
                    " https://grafana.example.com (a scheme, a host and optionally a port)"
                )
        return value

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(_split(self.cors_origins))

    @field_validator("window", "max_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("selector")
    @classmethod
    def _label_matchers(cls, value: str) -> str:
        return canonical_selector(value)

    @field_validator("window")
    @classmethod
    def _window_within_max(cls, value: str, info: ValidationInfo) -> str:
        # A field validator, not a model one, so that it runs even when another field is bad.
        maximum = info.data.get("max_window")
        if maximum is not None and parse_duration(value) > parse_duration(maximum):
            raise ValueError(f"{value} is longer than {ENV_PREFIX}MAX_WINDOW ({maximum})")
        return value

    @property
    def window_ms(self) -> int:
        return parse_duration(self.window)

    @property
    def effective_query_timeout(self) -> float:
        """The query timeout, capped so that one refresh always ends before the next is due."""
        return min(self.query_timeout, self.refresh_interval * 0.9)

    @property
    def effective_max_staleness(self) -> float:
        """How long a failing field keeps its last good value: 10 refresh intervals by default."""
        return self.max_staleness if self.max_staleness is not None else 10 * self.refresh_interval

    @property
    def table_limits(self) -> TableLimits:
        return TableLimits(max_entities=self.max_entities, top_models=self.top_models)

    @property
    def upstream_display(self) -> str:
        """The upstream URLs without any user:password part, safe for logs and documents."""
        return ", ".join(redact_url(url) for url in self.prometheus_urls)


@dataclass(frozen=True)
class TableLimits:
    """How many rows a table of the catalog keeps: at most `max_entities`, and `top_models`
    where its `limit` names it."""

    max_entities: int
    top_models: int

    def rows(self, limit: int | str | None) -> tuple[int, str]:
        """The rows a table with catalog `limit` keeps, and what says so."""
        if limit == TOP_MODELS and self.top_models < self.max_entities:
            return self.top_models, f"{ENV_PREFIX}TOP_MODELS"
        if isinstance(limit, int) and limit < self.max_entities:
            return limit, "the catalog's limit"
        return self.max_entities, f"{ENV_PREFIX}MAX_ENTITIES"


PERCENT_ENCODE = (
    "reserved characters in a user name or password must be percent-encoded"
    " (/ as %2F, ? as %3F, # as %23, @ as %40, : as %3A, a comma as %2C)"
)


def url_problem(url: str) -> str | None:
    """What keeps `url` from being an http(s) URL with a host, a valid port and at most a
    path after it, if anything; in words that never repeat the URL or a part of it."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- urlsplit checks the port only when it is read
    except ValueError:
        if "@" in url:
            return f"cannot be read: {PERCENT_ENCODE}"
        return "has an invalid port or host"
    if "@" in url and "@" not in parts.netloc:
        # A reserved character in the password ended the host part early: the rest of the
        # password was read as a path, a query or a fragment.
        return f"cannot be read: {PERCENT_ENCODE}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "is not an http:// or https:// URL with a host"
    if parts.query or parts.fragment:
        return "has a query or a fragment; only a path may follow the host"
    return None


def _split(origins: str) -> list[str]:
    return [origin.strip().rstrip("/") for origin in origins.split(",") if origin.strip()]


def default(name: str) -> Any:
    """The default of setting `name`, for the help of commands that fall back on it."""
    return Settings.model_fields[name].get_default(call_default_factory=True)


def redact_url(url: str) -> str:
    """`url` as it may be shown: its scheme, host, port and path, never a user name, a
    password, a query or a fragment, however it is written."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(a URL that cannot be read, not shown)"
    if "@" in url and "@" not in parts.netloc:
        return "(a URL that cannot be read, not shown)"  # see url_problem
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))


def load_settings() -> Settings:
    """Settings from the environment, or SettingsError naming every invalid variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = [_problem(item) for item in error.errors(include_url=False, include_input=False)]
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


def _problem(item: Mapping[str, Any]) -> str:
    """One error as `EXPORTER_NAME: what is wrong`, without pydantic's `Value error, `."""
    message = str(item["ctx"]["error"]) if item["type"] == "value_error" else item["msg"]
    if not item["loc"]:
        return message  # a rule across variables names them itself
    return f"{ENV_PREFIX}{str(item['loc'][0]).upper()}: {message}"
