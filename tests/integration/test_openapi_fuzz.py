"""Schemathesis against a running exporter on real data: no 5xx, every answer as documented."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok

from tests.integration.servers import PrometheusServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exporter_url(prometheus: PrometheusServer) -> Iterator[str]:
    """An exporter process (schemathesis calls it over real HTTP from its own client)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXPORTER_")}
    environment |= {
        "EXPORTER_HOST": "127.0.0.1",
        "EXPORTER_PORT": str(port),
        "EXPORTER_PROMETHEUS_URL": prometheus.url,
        "EXPORTER_REFRESH_INTERVAL": "2",
        "EXPORTER_ON_DEMAND_PER_MINUTE": "600",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "exporter", "serve"],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"{url}/summary", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def test_every_answer_matches_the_schema_and_none_is_a_5xx(exporter_url: str) -> None:
    schema = schemathesis.openapi.from_url(f"{exporter_url}/openapi.json")
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results)  # the document itself is valid
    assert {operation.path for operation in operations} >= {
        "/summary", "/summary/{domain}", "/prometheus/metrics/summary", "/metrics", "/healthz",
    }  # fmt: skip
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def answers_as_documented(case: Any) -> None:
            # Schema-valid parameters may still be refused with a documented 400 (a window
            # longer than the maximum, units out of order, a future instant): rules a JSON
            # schema cannot state. Every other check applies.
            response = case.call_and_validate(
                base_url=exporter_url, excluded_checks=[checks.positive_data_acceptance]
            )
            assert response.status_code < 500

        answers_as_documented()
