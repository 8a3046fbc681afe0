"""The status page in a real headless Chromium, on a running exporter over real Prometheus data.

Two sources of data: the gateway dataset (dataset.py) pinned at BUSY_AT, and fifteen minutes
of the demo gateway (demo_history.py), whose traffic has long model names and an incident in
which one provider's circuit breaker opens and a deduction is lost. The page is laid out on a
phone (390 px, with mobile emulation), a laptop (1280 px) and a desktop (1920 px).
Screenshots are kept in test-artifacts/ for people to look at; each test prints their paths.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from harness.servers import PrometheusServer
from tests.exporter_client import service, started, wait_for_document
from tests.integration import dataset
from tests.integration.browser import (
    DESKTOP,
    LAPTOP,
    PHONE,
    SCREENS,
    Browser,
    Screen,
    overflows,
)
from tests.integration.conftest import GATEWAY_MODES, gateway_environment
from tests.integration.demo_history import History
from tests.page_text import read_page, visible_text

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PROVIDERS_TABLE = 'section[aria-labelledby="table-providers.by_provider"]'
MODELS_TABLE = 'section[aria-labelledby="table-models.by_model"]'


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with Browser.launch(tmp_path / "chromium") as launched:
        yield launched


async def keep(browser: Browser, name: str, *, whole_page: bool = True) -> Path:
    """A screenshot in test-artifacts/ (of the whole page, or of the first screen), its path
    printed."""
    path = await browser.screenshot(ARTIFACTS / name, whole_page=whole_page)
    print(f"screenshot: {path}")
    return path


async def dom(browser: Browser) -> str:
    html: str = await browser.evaluate("document.documentElement.outerHTML")
    return html


async def texts(browser: Browser, selector: str) -> list[str]:
    """The text of each element matching `selector`, with its whitespace collapsed."""
    found: list[str] = await browser.evaluate(
        f"[...document.querySelectorAll({selector!r})]"
        ".map(e => e.innerText.replace(/\\s+/g, ' ').trim())"
    )
    return found


async def on_first_screen(browser: Browser, selector: str) -> bool:
    """Whether the element's bottom is within the screen's height, without scrolling."""
    bottom: float = await browser.evaluate(
        f"document.querySelector({selector!r}).getBoundingClientRect().bottom"
    )
    height: float = await browser.evaluate("window.innerHeight")
    return bottom <= height


def at(history: History, instant: int) -> str:
    return f"/?time={instant}"


@pytest.mark.parametrize("gateway_mode", list(GATEWAY_MODES))
async def test_the_page_shows_the_gateway_at_a_glance(
    browser: Browser, start_exporter: Any, prometheus: PrometheusServer, gateway_mode: str
) -> None:
    client = await start_exporter(prometheus.url, environment=gateway_environment(gateway_mode))
    await browser.show(f"{client.make_url('/')}?time={dataset.BUSY_AT}", LAPTOP)
    page = await dom(browser)
    text = visible_text(page)
    assert text.startswith("Gateway status degraded")
    assert "Evaluated at 2026-01-01 00:30:00 UTC over the last 5m (on demand)" in text
    assert (
        "What is wrong degraded http_error_rate 10 % degraded above 5 %, critical above 20 %"
        in (text)
    )
    assert "provider_breakers_open 1 of 6 (16.67 %) open: groq" in text
    assert "missed_credit_deductions 2.5 USD by reason: retry_exhausted 2.5 USD" in text
    assert "http_p95_latency ≥ 5000 ms" in text
    assert "ok synthetic_series 0" in text
    assert "groq 40 100 % 10000 open 0 unavailable" in text
    assert "top_models gpt-4o, claude-3-5-sonnet, mistral-large" in text
    assert "avg_inference_latency_ms 2000 ms" in text
    assert "active_api_keys — null: active_api_keys has no series in the upstream" in text
    assert "http.request_rate_per_minute latest 40 /min" in text
    assert f"APP_ENV={'production' if gateway_mode == 'production' else 'testing'}" in text
    assert "pinned to this instant" in text
    assert "Stale" not in text
    # Four sparklines drawn server-side, and nothing loaded from anywhere.
    assert len(re.findall(r"<svg\b", page)) == 4
    assert read_page(page).loads == []
    mode = "" if gateway_mode == "production" else f"-{gateway_mode}"
    await keep(browser, f"status-page{mode}.png")


async def test_during_an_incident_the_first_screen_says_what_is_wrong_and_who(
    browser: Browser, start_exporter: Any, demo_prometheus: PrometheusServer, demo_history: History
) -> None:
    client = await start_exporter(
        demo_prometheus.url, environment=gateway_environment("production")
    )
    failing = demo_history.incident.provider
    await browser.show(f"{client.make_url('/')}?time={demo_history.during_the_incident}", LAPTOP)
    assert (await texts(browser, "h2"))[:5] == [
        "What is wrong",
        "providers.by_provider",
        "models.by_model",
        "Last hour",
        "All checks",
    ]
    problems = await texts(browser, "li.problem")
    assert [problem.split()[:2] for problem in problems] == [
        ["DEGRADED", "providers_unavailable"],
        ["DEGRADED", "provider_breakers_open"],
        ["DEGRADED", "missed_credit_deductions"],
    ]
    assert f"1 of 5 (20 %) open: {failing} degraded above 0 %" in problems[1]
    assert re.search(r"[0-9.]+ USD by reason: retry_exhausted [0-9.]+ USD", problems[2])
    # The failing provider heads its table, its breaker open; the others follow, closed.
    rows = await texts(browser, f"{PROVIDERS_TABLE} tbody tr")
    assert rows[0].startswith(failing)
    assert rows[0].endswith("open 0 unavailable")
    assert all(" closed " in row and row.endswith("healthy") for row in rows[1:])
    assert len(rows) == 5
    # The problems and the whole providers table on a laptop's first screen; on a desktop's,
    # the models table beside it too.
    assert await on_first_screen(browser, PROVIDERS_TABLE)
    await keep(browser, "status-page-incident-first-screen-1280.png", whole_page=False)
    await browser.show(f"{client.make_url('/')}?time={demo_history.during_the_incident}", DESKTOP)
    assert await on_first_screen(browser, PROVIDERS_TABLE)
    assert await on_first_screen(browser, f"{MODELS_TABLE} tbody tr:nth-child(5)")
    await keep(browser, "status-page-incident-first-screen-1920.png", whole_page=False)


@pytest.mark.parametrize("screen", SCREENS, ids=lambda screen: screen.name)
@pytest.mark.parametrize("moment", ["incident", "healthy"])
async def test_nothing_is_wider_than_its_card(
    browser: Browser,
    start_exporter: Any,
    demo_prometheus: PrometheusServer,
    demo_history: History,
    moment: str,
    screen: Screen,
) -> None:
    client = await start_exporter(demo_prometheus.url)
    instant = demo_history.during_the_incident if moment == "incident" else demo_history.healthy
    await browser.show(f"{client.make_url('/')}?time={instant}", screen)
    # Long model names (accounts/fireworks/models/...) are in the models table.
    assert any("accounts/" in row for row in await texts(browser, f"{MODELS_TABLE} tbody tr"))
    await keep(browser, f"status-page-{moment}-{screen.width}.png")
    assert await overflows(browser, open_details=False) == []
    # And with every PromQL shown.
    assert await overflows(browser, open_details=True) == []


async def test_a_phone_lays_the_page_out_at_its_own_width(
    browser: Browser, start_exporter: Any, demo_prometheus: PrometheusServer, demo_history: History
) -> None:
    # Under mobile emulation a page without a viewport meta tag is laid out 980 px wide and
    # zoomed out, as on a real phone: the emulation is in force.
    await browser.show("data:text/html,<p>no viewport meta tag</p>", PHONE)
    assert await browser.evaluate("document.documentElement.clientWidth") == 980
    client = await start_exporter(demo_prometheus.url)
    await browser.show(f"{client.make_url('/')}?time={demo_history.during_the_incident}", PHONE)
    assert await browser.evaluate("document.documentElement.clientWidth") == PHONE.width
    assert await browser.evaluate("window.innerWidth") == PHONE.width
    assert await browser.evaluate("window.visualViewport.scale") == 1
    # What is wrong fits the phone's first screen, the worst provider's block starts on it.
    assert await on_first_screen(browser, "li.problem:last-child")
    assert await on_first_screen(browser, f"{PROVIDERS_TABLE} tbody tr:first-child th")
    await keep(browser, "status-page-incident-first-screen-390.png", whole_page=False)
    # Each provider is a block of its own: its name, then one line per cell.
    together = (await texts(browser, f"{PROVIDERS_TABLE} tbody tr"))[0]
    assert together.startswith(demo_history.incident.provider)
    lines: int = await browser.evaluate(
        f"document.querySelectorAll('{PROVIDERS_TABLE} tbody tr')[0].querySelectorAll('td').length"
    )
    tops: list[float] = await browser.evaluate(
        f"[...document.querySelectorAll('{PROVIDERS_TABLE} tbody tr')[0]"
        ".querySelectorAll('th, td')].map(cell => cell.getBoundingClientRect().top)"
    )
    assert len(set(tops)) == lines + 1 == 7


async def test_the_stale_banner_lines_up_with_the_cards(
    browser: Browser, start_exporter: Any, live_prometheus: PrometheusServer
) -> None:
    client = await started(start_exporter, live_prometheus.url)
    live_prometheus.kill()
    await service(client).refresher.refresh_once()  # fails: the values are kept, stale
    await wait_for_document(client, lambda document: document["stale"], within=5)
    for screen in SCREENS:
        await browser.show(str(client.make_url("/")), screen)
        edges: list[list[float]] = await browser.evaluate(
            "[...document.querySelectorAll('.banner, section')]"
            ".map(card => [card.getBoundingClientRect().left, card.getBoundingClientRect().right])"
        )
        banner, first_card = edges[0], edges[1]
        assert banner == pytest.approx(first_card, abs=0.5), screen.name
        assert "Stale: " in (await texts(browser, ".banner"))[0]
        await keep(browser, f"status-page-stale-{screen.width}.png")
        assert await overflows(browser, open_details=True) == [], screen.name


async def test_the_live_page_says_what_is_missing_instead_of_drawing_zeros(
    browser: Browser, start_exporter: Any, prometheus: PrometheusServer
) -> None:
    # Now is long after the dataset: the live page has no data for the last hour.
    client = await started(start_exporter, prometheus.url)
    await browser.show(str(client.make_url("/")), LAPTOP)
    text = visible_text(await dom(browser))
    assert text.startswith("Gateway down critical The gateway is down: gateway_samples ≥")
    assert text.count("No sparkline: no data in the last hour") == 4
    assert "null: fastapi_requests_total has no series in the upstream over the last 1h" in text
    assert "reloads every 1 h" in text  # the test exporter's refresh interval
