"""`summary-exporter check`: the table, its colours, and the exit status for each state."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from exporter.catalog import Catalog
from exporter.check import Report, colour_enabled, from_exporter, render
from tests.exporter_client import answer_degraded, distinct_queries, started
from tests.exporter_client import command as exporter_command
from tests.fake_prometheus import FakePrometheus


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def command(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Runs `python -m exporter check ...` without blocking the loop the exporter serves on."""
    return await exporter_command("check", *args, env=env)


def test_colour_only_on_a_terminal_and_never_with_no_color() -> None:
    assert colour_enabled(Terminal(), {}) is True
    assert colour_enabled(Terminal(), {"NO_COLOR": ""}) is False
    assert colour_enabled(io.StringIO(), {}) is False


def report(status: str = "degraded") -> Report:
    summary = {
        "timestamp": "2026-01-01T00:30:00Z",
        "window": "5m",
        "stale": True,
        "age_seconds": 200,
        "metrics": {"http": {"error_rate": 10.0, "p95_latency_ms": None}},
        "nulls": {"http.p95_latency_ms": "no requests in window (0/0)"},
        "explain": {"http.error_rate": {"unit": "percent"}, "http.p95_latency_ms": {"unit": "ms"}},
        "environment": {"app_env": "production", "testing": False},
    }
    check = {
        "status": status,
        "display": "10 %",
        "threshold": "degraded above 5 %",
        "reason": "because",
    }
    return Report("http://x (exporter)", summary, {"status": status, "checks": {"errors": check}})


def test_the_table_shows_domains_nulls_checks_and_reasons_plainly() -> None:
    text = render(report(), colour=False)
    assert "\x1b[" not in text
    assert text.splitlines() == [
        "Gateway status: DEGRADED",
        "  from http://x (exporter); evaluated at 2026-01-01T00:30:00Z over the last 5m;"
        " APP_ENV=production, test mode off",
        "  STALE: the newest values are 3 min 20 s old",
        "",
        "http",
        "  error_rate      10 %",
        "  p95_latency_ms  —  (null: no requests in window (0/0))",
        "",
        "Checks",
        "  CHECK   STATUS    VALUE  LIMITS",
        "  errors  degraded  10 %   degraded above 5 %",
        "          -> because",
    ]


def test_statuses_are_coloured_on_a_terminal() -> None:
    text = render(report("critical"), colour=True)
    assert "Gateway status: \x1b[31mCRITICAL\x1b[0m" in text
    assert "\x1b[31mcritical\x1b[0m" in text


async def test_a_running_exporter_gives_its_summary_with_units_and_its_checks(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_degraded(fake_prometheus, catalog)
    client = await started(start_exporter, fake_prometheus.url)
    url = str(client.make_url("")).rstrip("/")
    result = await from_exporter(url, at=None, window=None, query_timeout=5)
    assert result.status == "degraded"
    assert result.summary["metrics"]["http"]["total_requests"] == 200
    text = render(result, colour=False)
    assert "  error_rate               10 %" in text
    assert "  http_error_rate           degraded  10 %" in text


async def test_check_exits_1_when_degraded_and_prints_a_plain_table_when_piped(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_degraded(fake_prometheus, catalog)
    client = await started(start_exporter, fake_prometheus.url)
    status, stdout, _ = await command("--url", str(client.make_url("")))
    assert status == 1
    assert stdout.startswith("Gateway status: DEGRADED\n")
    assert "\x1b[" not in stdout


async def test_check_exits_2_when_critical(start_exporter: Any) -> None:
    client = await started(start_exporter, "http://127.0.0.1:9")
    status, stdout, _ = await command("--url", str(client.make_url("")), "--json")
    assert status == 2
    document = json.loads(stdout)
    assert document["status"] == "critical"
    assert document["health"]["checks"]["upstream"]["status"] == "critical"


async def test_check_finds_the_exporter_by_its_own_port_and_token_settings(
    start_exporter: Any, fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_degraded(fake_prometheus, catalog)
    client = await started(start_exporter, fake_prometheus.url, auth_token="s3cret")
    variables = {"EXPORTER_PORT": str(client.port), "EXPORTER_AUTH_TOKEN": "s3cret"}
    status, stdout, stderr = await command(env=variables)
    assert status == 1, stderr
    assert stdout.startswith("Gateway status: DEGRADED\n")


async def test_check_exits_3_naming_an_invalid_setting() -> None:
    status, stdout, stderr = await command(env={"EXPORTER_PORT": "not-a-port"})
    assert status == 3
    assert stdout == ""
    assert stderr.startswith("summary-exporter check: invalid settings: EXPORTER_PORT: ")


async def test_check_exits_3_when_the_exporter_cannot_be_reached() -> None:
    status, stdout, stderr = await command("--url", "http://127.0.0.1:9")
    assert status == 3
    assert stdout == ""
    assert "cannot reach the exporter at http://127.0.0.1:9" in stderr


async def test_check_asks_prometheus_directly_at_one_instant(
    fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_degraded(fake_prometheus, catalog)
    status, stdout, _ = await command(
        "--prometheus", fake_prometheus.url, "--time", "2026-01-01T00:30:00Z", "--json"
    )
    assert status == 1
    document = json.loads(stdout)
    assert document["summary"]["timestamp"] == "2026-01-01T00:30:00Z"
    assert "snapshot_age" not in document["health"]["checks"]
    assert {at for _, at in fake_prometheus.asked} == {"1767227400.000"}


async def test_check_exits_3_when_prometheus_cannot_be_reached() -> None:
    status, _, stderr = await command("--prometheus", "http://127.0.0.1:9")
    assert status == 3
    assert "cannot reach Prometheus: http://127.0.0.1:9: cannot connect" in stderr


@pytest.mark.parametrize("bad", [["--time", "yesterday"], ["--window", "5x"]])
async def test_bad_arguments_are_refused_before_asking_anything(bad: list[str]) -> None:
    status, _, stderr = await command("--url", "http://127.0.0.1:9", *bad)
    assert status == 2
    assert "usage:" in stderr


def test_the_first_line_says_when_the_gateway_itself_is_down() -> None:
    down = report("critical")
    down.health["liveness"] = {"status": "critical", "reason": "gateway_targets 0 of 2 (0 %)"}
    text = render(down, colour=False)
    assert text.splitlines()[0] == (
        "Gateway status: CRITICAL (gateway down: gateway_targets 0 of 2 (0 %))"
    )
    partly = report("degraded")
    partly.health["liveness"] = {"status": "degraded", "reason": "gateway_targets 1 of 2 (50 %)"}
    assert render(partly, colour=False).startswith(
        "Gateway status: DEGRADED (gateway partly down: gateway_targets 1 of 2 (50 %))\n"
    )
    live = report("degraded")
    live.health["liveness"] = {"status": "ok", "reason": None}
    assert render(live, colour=False).startswith("Gateway status: DEGRADED\n")


def test_a_lower_bound_is_printed_with_at_least() -> None:
    bounded = report()
    bounded.summary["metrics"]["http"]["p95_latency_ms"] = 5000.0
    bounded.summary["bounds"] = {"http.p95_latency_ms": "at_least"}
    assert "  p95_latency_ms  ≥ 5000 ms" in render(bounded, colour=False).splitlines()


async def test_check_with_prometheus_applies_the_selector_and_refuses_a_bad_one(
    fake_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    await command("--prometheus", fake_prometheus.url, "--selector", "job='a'")
    queries = fake_prometheus.queries()
    assert len(set(queries)) == len(distinct_queries(catalog, "5m"))
    assert all('job="a"' in query for query in queries)
    status, stdout, stderr = await command(
        "--prometheus", fake_prometheus.url, "--selector", "job=a"
    )
    assert (status, stdout) == (2, "")
    assert "error: argument --selector: expected a quoted string at 'a'" in stderr


def with_providers(status: str = "degraded") -> Report:
    """A report whose providers domain holds its table, and whose check names a provider."""
    bad = report(status)
    bad.summary["metrics"]["providers"] = {
        "by_provider": [
            {"provider": "groq", "error_rate": 100.0, "avg_response_time_ms": 10_000.0,
             "breaker": "open", "status": "unavailable"},
            {"provider": "fireworks", "error_rate": None, "avg_response_time_ms": None,
             "breaker": "closed", "status": "healthy"},
        ]
    }  # fmt: skip
    bad.summary["explain"]["providers.by_provider"] = {
        "unit": "score",
        "columns": {
            "error_rate": {"unit": "percent"},
            "avg_response_time_ms": {"unit": "ms"},
            "breaker": {"unit": None},
            "status": {"unit": None},
        },
    }
    bad.health["checks"]["errors"]["detail"] = "open: groq"
    return bad


def test_the_providers_table_is_printed_under_the_checks_worst_first_with_units() -> None:
    lines = render(with_providers(), colour=False).splitlines()
    assert "  by_provider  2 rows (below)" in lines
    checks_end = lines.index("          -> open: groq")
    assert lines[checks_end + 1 :] == [
        "",
        "providers.by_provider",
        "  PROVIDER   ERROR_RATE  AVG_RESPONSE_TIME_MS  BREAKER  STATUS",
        "  groq       100 %       10000 ms              open     unavailable",
        "  fireworks  —           —                     closed   healthy",
    ]


def test_a_cut_table_says_how_many_rows_it_kept_of_how_many() -> None:
    cut = with_providers()
    cut.summary["cuts"] = {
        "providers.by_provider": {"rows": 2, "of": 7, "limit": "EXPORTER_MAX_ENTITIES"}
    }
    assert (
        "providers.by_provider (the first 2 of 7 rows, EXPORTER_MAX_ENTITIES)"
        in render(cut, colour=False).splitlines()
    )


def test_who_is_behind_a_check_is_printed_only_when_it_is_not_ok() -> None:
    assert "          -> open: groq" in render(with_providers("degraded"), colour=False)
    assert "-> open: groq" not in render(with_providers("ok"), colour=False)


def test_a_table_listed_worst_first_comes_before_the_others() -> None:
    both = with_providers()
    metrics = both.summary["metrics"]
    # In the catalog's order: the models' domain before the providers'.
    both.summary["metrics"] = {
        "models": {"by_model": [{"model": "gpt-4o", "requests": 120}]},
        **metrics,
    }
    both.summary["explain"]["models.by_model"] = {"order": "descending", "columns": {}}
    both.summary["explain"]["providers.by_provider"]["order"] = "ascending"
    lines = render(both, colour=False).splitlines()
    assert lines.index("providers.by_provider") < lines.index("models.by_model")
