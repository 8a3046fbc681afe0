"""The status page in a real headless Chromium, on a running exporter over real Prometheus data.

The page is pinned to dataset.BUSY_AT (`?time=`), so what it shows is known. The rendered DOM
is read as text, and a screenshot is kept in test-artifacts/ for people to look at:
status-page.png in production mode, status-page-testing.png in testing mode.
"""

from __future__ import annotations

import asyncio
import re
import struct
from pathlib import Path
from typing import Any

import pytest

from harness.servers import PrometheusServer, require_binary
from tests.integration import dataset
from tests.integration.conftest import GATEWAY_MODES, gateway_environment
from tests.page_text import read_page, visible_text

pytestmark = pytest.mark.integration

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WIDTH, HEIGHT = 1280, 2000
_BROWSER_TIMEOUT_S = 90


async def chromium(profile: Path, *args: str) -> str:
    """Runs headless Chromium without blocking the loop the exporter answers on; its stdout."""
    binary = require_binary("chromium", "apt-get install -y --no-install-recommends chromium")
    process = await asyncio.create_subprocess_exec(
        binary,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), _BROWSER_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()


def png_size(path: Path) -> tuple[int, int]:
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.mark.parametrize("gateway_mode", list(GATEWAY_MODES))
async def test_the_page_shows_the_gateway_at_a_glance_in_a_real_browser(
    start_exporter: Any, prometheus: PrometheusServer, gateway_mode: str, tmp_path: Path
) -> None:
    client = await start_exporter(prometheus.url, environment=gateway_environment(gateway_mode))
    url = f"{client.make_url('/')}?time={dataset.BUSY_AT}"

    dom = await chromium(tmp_path / "profile-dom", "--dump-dom", url)
    text = visible_text(dom)
    assert text.startswith("Gateway status degraded")
    assert "Evaluated at 2026-01-01 00:30:00 UTC over the last 5m (on demand)" in text
    assert "gateway_targets ok 2 of 2 (100 %)" in text
    assert "http_error_rate degraded 10 % degraded above 5 %, critical above 20 %" in text
    assert "providers_unavailable degraded 1 of 6 (16.67 %)" in text
    assert "http_p95_latency degraded ≥ 5000 ms" in text
    assert "synthetic_series ok 0" in text
    assert "top_models gpt-4o, claude-3-5-sonnet, mistral-large" in text
    assert "avg_inference_latency_ms 2000 ms" in text
    assert "active_api_keys — null: active_api_keys has no series in the upstream" in text
    assert "http.request_rate_per_minute latest 40 /min" in text
    assert f"APP_ENV={'production' if gateway_mode == 'production' else 'testing'}" in text
    assert "pinned to this instant" in text
    assert "Stale" not in text
    # Four sparklines drawn server-side, and nothing loaded from anywhere.
    assert len(re.findall(r"<svg\b", dom)) == 4
    assert read_page(dom).loads == []

    ARTIFACTS.mkdir(exist_ok=True)
    name = "status-page.png" if gateway_mode == "production" else f"status-page-{gateway_mode}.png"
    screenshot = ARTIFACTS / name
    screenshot.unlink(missing_ok=True)
    await chromium(
        tmp_path / "profile-shot",
        f"--window-size={WIDTH},{HEIGHT}",
        "--hide-scrollbars",
        f"--screenshot={screenshot}",
        url,
    )
    assert png_size(screenshot) == (WIDTH, HEIGHT)
    assert screenshot.stat().st_size > 20_000  # a drawn page, not a blank one
    (ARTIFACTS / name.replace(".png", ".html")).write_text(dom)


async def test_the_live_page_says_what_is_missing_instead_of_drawing_zeros(
    start_exporter: Any, prometheus: PrometheusServer, tmp_path: Path
) -> None:
    # Now is long after the dataset: the live page has no data for the last hour.
    client = await start_exporter(prometheus.url)
    for _ in range(500):
        if (await client.get("/summary")).status == 200:
            break
        await asyncio.sleep(0.01)
    dom = await chromium(tmp_path / "profile", "--dump-dom", str(client.make_url("/")))
    text = visible_text(dom)
    assert text.startswith("Gateway down critical The gateway is down: gateway_samples ≥")
    assert text.count("No sparkline: no data in the last hour") == 4
    assert "null: fastapi_requests_total has no series in the upstream over the last 1h" in text
    assert "reloads every 1 h" in text  # the test exporter's refresh interval
