"""Settings from EXPORTER_* variables: defaults, validation messages and URL redaction."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from exporter.errors import SettingsError
from exporter.settings import Settings, default, load_settings, redact_url


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No EXPORTER_* variable of the surrounding shell reaches these tests."""
    for name in list(os.environ):
        if name.upper().startswith("EXPORTER_"):
            monkeypatch.delenv(name)


def settings_error(monkeypatch: pytest.MonkeyPatch, **variables: str) -> str:
    """The SettingsError message for these EXPORTER_* variables (names without the prefix)."""
    for name, value in variables.items():
        monkeypatch.setenv(f"EXPORTER_{name}", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    return str(caught.value)


def test_defaults_apply_when_no_variable_is_set() -> None:
    settings = load_settings()

    assert settings.prometheus_url == "http://localhost:9090"
    assert settings.host == "0.0.0.0"
    assert settings.port == 9199
    assert settings.refresh_interval == 15.0
    assert settings.query_timeout == 5.0
    assert settings.window == "5m"
    assert settings.max_window == "30d"
    assert settings.catalog is None


def test_tables_keep_10_models_and_50_rows_at_most_by_default() -> None:
    limits = load_settings().table_limits
    assert (limits.top_models, limits.max_entities) == (10, 50)
    assert limits.rows("top_models") == (10, "EXPORTER_TOP_MODELS")
    assert limits.rows(None) == (50, "EXPORTER_MAX_ENTITIES")


def test_the_table_limits_are_read_from_their_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTER_TOP_MODELS", "25")
    monkeypatch.setenv("EXPORTER_MAX_ENTITIES", "20")
    limits = load_settings().table_limits
    # EXPORTER_MAX_ENTITIES bounds every table, the models' too.
    assert limits.rows("top_models") == (20, "EXPORTER_MAX_ENTITIES")


def test_default_window_in_milliseconds() -> None:
    assert load_settings().window_ms == 5 * 60_000


def test_variables_override_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text("", encoding="utf-8")
    monkeypatch.setenv("EXPORTER_PROMETHEUS_URL", "https://prom.example:9443/prometheus/")
    monkeypatch.setenv("EXPORTER_PORT", "8080")
    monkeypatch.setenv("EXPORTER_REFRESH_INTERVAL", "30")
    monkeypatch.setenv("EXPORTER_WINDOW", "1h")
    monkeypatch.setenv("EXPORTER_CATALOG", str(catalog))

    settings = load_settings()

    assert settings.prometheus_url == "https://prom.example:9443/prometheus"
    assert settings.port == 8080
    assert settings.refresh_interval == 30.0
    assert settings.window_ms == 3_600_000
    assert settings.catalog == catalog


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "70000"),
        ("PORT", "0"),
        ("WINDOW", "5x"),
        ("WINDOW", "0s"),
        ("MAX_WINDOW", "5m1h"),
        ("PROMETHEUS_URL", "ftp://x"),
        ("PROMETHEUS_URL", "http://"),
        ("PROMETHEUS_URL", "localhost:9090"),
        ("CATALOG", "/nonexistent"),
        ("REFRESH_INTERVAL", "0"),
        ("REFRESH_INTERVAL", "0.5"),
        ("QUERY_TIMEOUT", "-1"),
        ("LOG_FORMAT", "xml"),
        ("TOP_MODELS", "0"),
        ("TOP_MODELS", "ten"),
        ("MAX_ENTITIES", "1001"),
    ],
)
def test_invalid_value_is_reported_with_its_variable_name(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    message = settings_error(monkeypatch, **{variable: value})

    assert message.startswith("invalid settings: ")
    assert f"EXPORTER_{variable}:" in message


def test_catalog_that_is_a_directory_is_rejected(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    message = settings_error(monkeypatch, CATALOG=str(tmp_path))

    assert f"EXPORTER_CATALOG: {tmp_path} is not a readable file" in message


@pytest.mark.parametrize("variable", ["CATALOG", "BEARER_TOKEN_FILE", "TLS_CA_FILE"])
def test_an_empty_file_variable_means_no_file(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(f"EXPORTER_{variable}", "")

    assert getattr(load_settings(), variable.lower()) is None


@pytest.mark.parametrize(
    "variables",
    [
        {"HEADERS": "notjson"},
        {"HEADERS": '["X-Scope-OrgID"]'},
        {"CATALOG": "/nonexistent"},
        {"WINDOW": "5x"},
        {"PROMETHEUS_URL": "ftp://x"},
        {"CORS_ORIGINS": "[bad"},
        {"BEARER_TOKEN": "t", "BEARER_TOKEN_FILE": __file__},
    ],
)
def test_messages_carry_no_pydantic_wording(
    monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> None:
    message = settings_error(monkeypatch, **variables)

    assert "Value error" not in message
    assert "EnvSettingsSource" not in message
    assert "EXPORTER_" in message.removeprefix("invalid settings: ").split(":")[0]


def test_headers_that_are_not_json_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(monkeypatch, HEADERS="notjson")

    assert message == (
        'invalid settings: EXPORTER_HEADERS: must be a JSON object such as {"X-Scope-OrgID":'
        ' "tenant-1"}'
    )


def test_headers_are_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTER_HEADERS", '{"X-Scope-OrgID": "t1"}')

    assert load_settings().headers == {"X-Scope-OrgID": "t1"}


@pytest.mark.parametrize(
    "origins", ["[bad", "grafana.example.com", "https://grafana.example.com/d/x", "*", "https://"]
)
def test_a_cors_origin_that_is_not_an_origin_is_refused(
    monkeypatch: pytest.MonkeyPatch, origins: str
) -> None:
    message = settings_error(monkeypatch, CORS_ORIGINS=f"https://ok.example.com,{origins}")

    assert message.startswith("invalid settings: EXPORTER_CORS_ORIGINS: ")
    assert "is not a browser origin such as https://grafana.example.com" in message


def test_cors_origins_are_listed_without_a_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTER_CORS_ORIGINS", " https://grafana.example.com/ ,http://[::1]:3000")

    assert load_settings().allowed_origins == {"https://grafana.example.com", "http://[::1]:3000"}


def test_defaults_are_read_from_the_settings_themselves() -> None:
    assert default("window") == "5m"
    assert default("port") == 9199


def test_window_longer_than_the_default_max_window_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = settings_error(monkeypatch, WINDOW="60d")

    assert (
        message == "invalid settings: EXPORTER_WINDOW: 60d is longer than EXPORTER_MAX_WINDOW (30d)"
    )


def test_window_equal_to_max_window_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTER_WINDOW", "720h")

    settings = load_settings()

    assert settings.window_ms == 30 * 86_400_000


def test_every_invalid_variable_is_named_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    message = settings_error(
        monkeypatch,
        PORT="abc",
        WINDOW="5x",
        PROMETHEUS_URL="ftp://x",
        CATALOG="/nonexistent",
    )

    for variable in ("PORT", "WINDOW", "PROMETHEUS_URL", "CATALOG"):
        assert f"EXPORTER_{variable}:" in message
    assert message.count("; ") == 3


def test_window_over_max_is_named_alongside_other_invalid_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = settings_error(monkeypatch, PORT="abc", WINDOW="60d")

    assert "EXPORTER_PORT:" in message
    assert "EXPORTER_WINDOW" in message


def test_invalid_url_message_does_not_repeat_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = settings_error(monkeypatch, PROMETHEUS_URL="ftp://admin:s3cret@prom.example")

    assert "EXPORTER_PROMETHEUS_URL:" in message
    assert "s3cret" not in message


@pytest.mark.parametrize("url", ["http://localhost:99999", "http://localhost:abc"])
def test_url_with_an_invalid_port_is_rejected(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    message = settings_error(monkeypatch, PROMETHEUS_URL=url)

    assert "EXPORTER_PROMETHEUS_URL:" in message


@pytest.mark.parametrize(
    ("interval", "timeout", "effective"),
    [(15.0, 5.0, 5.0), (2.0, 5.0, 1.8), (10.0, 10.0, 9.0)],
)
def test_effective_query_timeout_ends_before_the_next_refresh(
    interval: float, timeout: float, effective: float
) -> None:
    settings = Settings(refresh_interval=interval, query_timeout=timeout)

    assert settings.effective_query_timeout == pytest.approx(effective)
    assert settings.effective_query_timeout < settings.refresh_interval


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("http://admin:s3cret@prom.example:9090/prometheus", "http://prom.example:9090/prometheus"),
        ("https://admin:s3cret@prom.example/api?token=t0k#x", "https://prom.example/api"),
        ("http://admin@prom.example:9090", "http://prom.example:9090"),
        ("http://:s3cret@prom.example:9090/", "http://prom.example:9090/"),
    ],
)
def test_redact_url_removes_credentials_and_keeps_host_port_and_path(
    url: str, redacted: str
) -> None:
    assert redact_url(url) == redacted


def test_redact_url_leaves_a_url_without_credentials_unchanged() -> None:
    assert (
        redact_url("http://prom.example:9090/prometheus") == "http://prom.example:9090/prometheus"
    )


def test_redact_url_keeps_ipv6_brackets() -> None:
    assert redact_url("http://admin:s3cret@[::1]:9090/prom") == "http://[::1]:9090/prom"


SECRET_URLS = [
    "http://alice:se/cret@prom.example:9090",
    "http://alice:se?cret@prom.example",
    "http://alice:se#cret@prom.example",
    "http://alice:se,cret@prom.example:9090",
    "http://alice:se,cret@prom.example:9090,http://other:9090",
    "alice:se/cret@prom.example:9090",
    "http://[::1:se/cret@prom.example",
    "https://prom.example:9090/api?token=secret",
]
SECRETS = {"alice", "se", "cret", "secret", "token"}
WORDS_OF_THE_URLS = SECRETS | {"prom", "example", "other"}


@pytest.mark.parametrize("url", SECRET_URLS)
def test_a_url_that_cannot_be_read_is_refused_without_repeating_any_of_it(
    monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    message = settings_error(monkeypatch, PROMETHEUS_URL=url)

    assert message.startswith("invalid settings: EXPORTER_PROMETHEUS_URL: ")
    assert not WORDS_OF_THE_URLS & set(re.split(r"\W+", message))
    if "@" in url:
        assert "reserved characters in a user name or password must be percent-encoded" in message


@pytest.mark.parametrize("url", SECRET_URLS)
def test_redact_url_shows_no_secret_of_any_url(url: str) -> None:
    assert not SECRETS & set(re.split(r"\W+", redact_url(url)))


def test_a_percent_encoded_password_is_read_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXPORTER_PROMETHEUS_URL", "http://user:se%2Fc%2Cret@prom.example:9090")
    settings = load_settings()

    assert settings.upstream_display == "http://prom.example:9090"


def test_upstream_display_never_contains_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EXPORTER_PROMETHEUS_URL", "https://admin:s3cret@prom.example:9443/prom/")
    settings = load_settings()

    assert settings.prometheus_url == "https://admin:s3cret@prom.example:9443/prom"
    assert settings.upstream_display == "https://prom.example:9443/prom"
    assert "s3cret" not in settings.upstream_display


def test_the_selector_is_empty_by_default_and_canonical_when_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().selector == ""
    monkeypatch.setenv("EXPORTER_SELECTOR", " {job = 'gatewayz-api-production', env=~\"prod.*\"} ")

    assert load_settings().selector == 'job="gatewayz-api-production",env=~"prod.*"'


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("job=gatewayz", "expected a quoted string"),
        ('job="a" or up', "expected ',' between matchers"),
        ('__name__="up"', "__name__ cannot be selected"),
        ('job=~"(a"', "not a valid regular expression"),
    ],
)
def test_a_selector_that_is_not_promql_label_matchers_is_rejected_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    message = settings_error(monkeypatch, SELECTOR=value)

    assert message.startswith("invalid settings: EXPORTER_SELECTOR: ")
    assert problem in message
