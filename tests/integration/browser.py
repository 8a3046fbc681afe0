"""Headless Chromium driven over the Chrome DevTools Protocol, for the status page's tests.

One browser, one tab. `show` lays the page out as a given screen would (a phone's mobile
emulation honours the page's viewport meta tag, as a phone does; `--window-size` alone would
not), `evaluate` runs JavaScript in it, `screenshot` keeps what it shows. The browser runs on
loopback with a profile of its own and is stopped by its PID, even when a test fails.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiohttp

from harness.servers import require_binary

_START_TIMEOUT_S = 30.0
_CALL_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
# Flags for a headless Chromium that reaches nothing but the pages it is given.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--hide-scrollbars",
)


@dataclass(frozen=True)
class Screen:
    """A screen to lay the page out on: CSS pixels, and whether it is a phone."""

    name: str
    width: int
    height: int
    mobile: bool = False


PHONE = Screen("phone", 390, 844, mobile=True)
LAPTOP = Screen("laptop", 1280, 800)
DESKTOP = Screen("desktop", 1920, 1080)
SCREENS = (PHONE, LAPTOP, DESKTOP)


class BrowserError(RuntimeError):
    """Chromium did not start, or answered a command with an error."""


class Browser:
    """One tab of a running headless Chromium, spoken to over its DevTools WebSocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    @classmethod
    @asynccontextmanager
    async def launch(cls, profile: Path) -> AsyncIterator[Browser]:
        """Starts Chromium with a fresh profile in `profile`; stops it on the way out."""
        binary = require_binary("chromium", "apt-get install -y --no-install-recommends chromium")
        with await asyncio.to_thread(_log_in, profile) as log:
            process = await asyncio.create_subprocess_exec(
                binary,
                *FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        try:
            port = await _debugging_port(profile, process)
            async with aiohttp.ClientSession() as session:
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    tabs = await response.json()
                [tab] = [tab for tab in tabs if tab["type"] == "page"]
                async with session.ws_connect(
                    tab["webSocketDebuggerUrl"], max_msg_size=0
                ) as socket:
                    browser = cls(socket)
                    await browser.call("Page.enable")
                    yield browser
        finally:
            if process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), _STOP_TIMEOUT_S)
                except TimeoutError:
                    process.kill()
                    await process.wait()

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Sends one command and returns its result; events that arrive meanwhile are kept."""
        number = next(self._ids)
        await self._socket.send_json({"id": number, "method": method, "params": params})
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            while True:
                message = await self._receive()
                if message.get("id") == number:
                    if "error" in message:
                        raise BrowserError(f"{method}: {message['error']}")
                    result: dict[str, Any] = message.get("result", {})
                    return result
                self._events.append(message)

    async def wait_for_event(self, method: str) -> dict[str, Any]:
        """The first event `method` not seen yet, waiting for it if it has not come."""
        async with asyncio.timeout(_CALL_TIMEOUT_S):
            while True:
                for index, event in enumerate(self._events):
                    if event.get("method") == method:
                        del self._events[: index + 1]
                        return event
                self._events.append(await self._receive())

    async def _receive(self) -> dict[str, Any]:
        message = await self._socket.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise BrowserError(f"the DevTools connection ended: {message.type.name}")
        received: dict[str, Any] = json.loads(message.data)
        return received

    async def show(self, url: str, screen: Screen) -> None:
        """Loads `url` laid out on `screen`, and waits until it has loaded."""
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=screen.width,
            height=screen.height,
            deviceScaleFactor=1,
            mobile=screen.mobile,
        )
        await self.call("Emulation.setTouchEmulationEnabled", enabled=screen.mobile)
        self._events.clear()
        await self.call("Page.navigate", url=url)
        await self.wait_for_event("Page.loadEventFired")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-like values only)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}...: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self, path: Path, *, whole_page: bool = True) -> Path:
        """A PNG of the page (all of it, or the screen's worth at the top)."""
        options: dict[str, Any] = {"format": "png"}
        if whole_page:
            size = (await self.call("Page.getLayoutMetrics"))["cssContentSize"]
            options |= {
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": size["width"],
                    "height": size["height"],
                    "scale": 1,
                },
            }
        shot = await self.call("Page.captureScreenshot", **options)
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))
        return path


def _log_in(profile: Path) -> BinaryIO:
    """The log Chromium writes into its (new) profile directory."""
    profile.mkdir(parents=True, exist_ok=True)
    return (profile / "chromium.log").open("wb")


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _announced_port(announced: Path) -> int | None:
    lines = announced.read_text().splitlines() if announced.exists() else []
    return int(lines[0]) if lines else None


async def _debugging_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    """The port Chromium chose, from the DevToolsActivePort file it writes when it listens."""
    announced = profile / "DevToolsActivePort"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _START_TIMEOUT_S
    while loop.time() < deadline:
        if process.returncode is not None:
            raise BrowserError(f"chromium exited with {process.returncode}: see {profile}")
        port = await asyncio.to_thread(_announced_port, announced)
        if port is not None:
            return port
        await asyncio.sleep(0.05)
    raise BrowserError(f"chromium did not listen within {_START_TIMEOUT_S} s: see {profile}")


# Everything on the page that is wider than its card, or that makes the page scroll sideways.
# Closed <details> have nothing laid out; `open_details` opens them first.
OVERFLOWS = """
((openDetails) => {
  if (openDetails) document.querySelectorAll('details').forEach(d => { d.open = true; });
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > root.clientWidth) {
    problems.push(`the page scrolls sideways: ${root.scrollWidth} > ${root.clientWidth}`);
  }
  const describe = (element) => {
    const text = (element.textContent || '').trim().slice(0, 60);
    return `${element.tagName.toLowerCase()}.${element.className} "${text}"`;
  };
  for (const card of document.querySelectorAll('header, .banner, section, footer')) {
    const edge = card.getBoundingClientRect();
    for (const element of [card, ...card.querySelectorAll('*')]) {
      const box = element.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (box.left < edge.left - 0.5 || box.right > edge.right + 0.5) {
        problems.push(`${describe(element)} [${box.left}, ${box.right}] outside its card `
          + `${describe(card).slice(0, 40)} [${edge.left}, ${edge.right}]`);
      }
      if (element.scrollWidth > element.clientWidth + 1 && element.clientWidth > 0) {
        problems.push(`${describe(element)} overflows: ${element.scrollWidth} > `
          + `${element.clientWidth}`);
      }
    }
  }
  return problems;
})
"""


async def overflows(browser: Browser, *, open_details: bool) -> list[str]:
    found: list[str] = await browser.evaluate(f"{OVERFLOWS}({json.dumps(open_details)})")
    return found
