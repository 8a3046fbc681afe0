"""The command as a user runs it: exit codes, messages, and a clean stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import aiohttp
import pytest

from exporter import __version__
from exporter.cli import LISTEN_BACKLOG, configure_logging
from harness.servers import free_port
from tests.conftest import make_settings
from tests.exporter_client import run_command
from tests.fake_prometheus import FakePrometheus


def test_version_is_printed() -> None:
    result = run_command("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"summary-exporter {__version__}"


def test_an_invalid_setting_stops_before_listening_with_exit_2_naming_it() -> None:
    result = run_command("serve", env={"EXPORTER_PORT": "not-a-port", "EXPORTER_WINDOW": "5x"})
    assert result.returncode == 2
    assert "EXPORTER_PORT" in result.stderr
    assert "EXPORTER_WINDOW" in result.stderr


def test_a_port_in_use_stops_with_exit_2_and_one_line_naming_exporter_port() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = run_command(
            "serve",
            env={
                "EXPORTER_HOST": "127.0.0.1",
                "EXPORTER_PORT": str(port),
                "EXPORTER_PROMETHEUS_URL": "http://127.0.0.1:9",
            },
        )
    assert result.returncode == 2
    assert result.stderr == (
        f"summary-exporter: cannot listen on 127.0.0.1:{port}: the port is in use;"
        " set EXPORTER_PORT to a free port\n"
    )


def test_a_host_that_is_no_address_here_stops_with_exit_2_naming_exporter_host() -> None:
    result = run_command("serve", env={"EXPORTER_HOST": "192.0.2.1", "EXPORTER_PORT": "9"})
    assert result.returncode == 2
    assert "EXPORTER_HOST '192.0.2.1' is not an address of this host" in result.stderr


def test_a_selector_that_is_not_label_matchers_stops_serve_with_exit_2_naming_it() -> None:
    result = run_command("serve", env={"EXPORTER_SELECTOR": 'job="a" or vector(1)'})
    assert result.returncode == 2
    assert "EXPORTER_SELECTOR: " in result.stderr
    assert "expected ',' between matchers at 'or vector(1)'" in result.stderr


@pytest.mark.parametrize(
    "arguments",
    [
        pytest.param(("serve",), id="serve"),
        pytest.param(("check", "--prometheus", "http://alice:se/cret@prom.example"), id="check"),
    ],
)
def test_a_password_with_a_reserved_character_is_never_printed(arguments: tuple[str, ...]) -> None:
    result = run_command(
        *arguments, env={"EXPORTER_PROMETHEUS_URL": "http://alice:se/cret@prom.example:9090"}
    )
    assert result.returncode == 2
    assert "cret" not in result.stderr + result.stdout
    assert "alice" not in result.stderr + result.stdout
    assert "must be percent-encoded (/ as %2F" in result.stderr


def test_an_invalid_catalog_stops_with_exit_2_naming_the_file_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "catalog.yaml"
    broken.write_text(
        "domains:\n  http:\n    fields:\n      total:\n"
        "        query: sum(rate(x[$windw]))\n        kind: integer\n"
        "        unit: count\n        help: h\n"
    )
    result = run_command("serve", env={"EXPORTER_CATALOG": str(broken)})
    assert result.returncode == 2
    assert str(broken) in result.stderr
    assert "domains.http.fields.total" in result.stderr
    assert "windw" in result.stderr


def _serve(port: int) -> subprocess.Popen[str]:
    """`summary-exporter serve` on `port`, against a closed upstream port (refreshes fail)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    environment |= {
        "EXPORTER_HOST": "127.0.0.1",
        "EXPORTER_PORT": str(port),
        "EXPORTER_PROMETHEUS_URL": "http://user:s3cret-pass@127.0.0.1:9",
        "EXPORTER_REFRESH_INTERVAL": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "exporter", "serve"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _healthz(port: int) -> object:
    """The first /healthz answer within 5 s, or None."""
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.05)
    return None


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.communicate(timeout=5)


def test_serve_answers_health_and_stops_cleanly_on_sigterm() -> None:
    port = free_port()
    process = _serve(port)
    try:
        assert _healthz(port) == {"status": "ok"}
        time.sleep(1.2)  # let a refresh or two fail against the closed port
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=15)
    finally:
        _stop(process)
    assert process.returncode == 0
    assert "event=start" in stderr
    assert "event=query_failed" in stderr
    assert "s3cret-pass" not in stderr


def test_serve_queues_a_connection_storm_instead_of_dropping_it() -> None:
    # For a listening socket, ss reports the accept queue's limit as Send-Q.
    port = free_port()
    process = _serve(port)
    try:
        assert _healthz(port) == {"status": "ok"}
        listening = subprocess.run(
            ["ss", "-ltnH", f"( sport = :{port} )"], capture_output=True, text=True, check=True
        ).stdout.split()
    finally:
        _stop(process)
    assert int(listening[2]) == LISTEN_BACKLOG == 1024


async def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(
    fake_prometheus: FakePrometheus,
) -> None:
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    environment |= {
        "EXPORTER_HOST": "127.0.0.1",
        "EXPORTER_PORT": str(port),
        "EXPORTER_PROMETHEUS_URL": fake_prometheus.url,
        "EXPORTER_SHUTDOWN_GRACE": "5",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "exporter", "serve",
        env=environment, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/healthz") as health:
                        if health.status == 200:
                            break
                await asyncio.sleep(0.05)
            fake_prometheus.delay = 1.0  # the on-demand summary below takes a second
            slow = asyncio.ensure_future(session.get(f"{base}/summary", params={"window": "1h"}))
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            response = await slow
            assert response.status == 200
            assert (await response.json())["window"] == "1h"
        assert await asyncio.wait_for(process.wait(), timeout=15) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_serve_refuses_test_mode_in_production_with_exit_2_naming_testing() -> None:
    result = run_command("serve", env={"APP_ENV": "production", "TESTING": "true"})
    assert result.returncode == 2
    assert "TESTING='true'" in result.stderr
    assert "refusing to start" in result.stderr


def test_json_log_format_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(make_settings("http://127.0.0.1:9", log_format="json"))
    try:
        logging.getLogger("exporter.refresher").warning("event=query_failed field=%s", "http.x")
    finally:
        logging.getLogger().handlers.clear()
    entry = json.loads(capsys.readouterr().err.strip())
    assert entry["level"] == "warning"
    assert entry["logger"] == "exporter.refresher"
    assert entry["message"] == "event=query_failed field=http.x"
