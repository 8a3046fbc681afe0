"""Settings from `EXPORTER_*` environment variables, validated before anything listens."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from exporter.durations import parse_duration
from exporter.errors import SettingsError

ENV_PREFIX = "EXPORTER_"


class Settings(BaseSettings):
    """Every knob of the exporter; the field name upper-cased after `EXPORTER_` is its variable."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    prometheus_url: str = "http://localhost:9090"
    host: str = "0.0.0.0"
    port: int = Field(default=9199, ge=1, le=65535)
    refresh_interval: float = Field(default=15.0, gt=0, le=86_400)
    query_timeout: float = Field(default=5.0, gt=0, le=3_600)
    max_staleness: float | None = Field(default=None, gt=0)
    max_window: str = "30d"  # before `window`, whose validator compares with it
    window: str = "5m"
    catalog: Path | None = None
    log_format: Literal["logfmt", "json"] = "logfmt"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    max_concurrent_queries: int = Field(default=8, ge=1, le=256)
    on_demand_cache_size: int = Field(default=64, ge=1, le=10_000)
    max_concurrent_on_demand: int = Field(default=4, ge=1, le=256)
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    shutdown_grace: float = Field(default=10.0, ge=0, le=300)

    @field_validator("prometheus_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        try:
            parts.port  # noqa: B018 -- urlsplit checks the port only when it is read
        except ValueError:
            raise ValueError("has an invalid port") from None
        return value.strip().rstrip("/")

    @field_validator("window", "max_window")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("catalog")
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value

    @field_validator("window")
    @classmethod
    def _window_within_max(cls, value: str, info: ValidationInfo) -> str:
        # A field validator, not a model one, so that it runs even when another field is bad.
        maximum = info.data.get("max_window")
        if maximum is not None and parse_duration(value) > parse_duration(maximum):
            raise ValueError(
                f"{ENV_PREFIX}WINDOW ({value}) exceeds {ENV_PREFIX}MAX_WINDOW ({maximum})"
            )
        return value

    @property
    def window_ms(self) -> int:
        return parse_duration(self.window)

    @property
    def max_window_ms(self) -> int:
        return parse_duration(self.max_window)

    @property
    def effective_query_timeout(self) -> float:
        """The query timeout, capped so that one refresh always ends before the next is due."""
        return min(self.query_timeout, self.refresh_interval * 0.9)

    @property
    def effective_max_staleness(self) -> float:
        """How long a failing field keeps its last good value: 10 refresh intervals by default."""
        return self.max_staleness if self.max_staleness is not None else 10 * self.refresh_interval

    @property
    def upstream_display(self) -> str:
        """The upstream URL without any user:password part, safe for logs and documents."""
        return redact_url(self.prometheus_url)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def load_settings() -> Settings:
    """Settings from the environment, or SettingsError naming every invalid variable."""
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False, include_input=False):
            field = str(item["loc"][0]) if item["loc"] else ""
            variable = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
            problems.append(f"{variable}: {item['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
