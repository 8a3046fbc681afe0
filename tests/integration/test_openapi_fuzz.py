"""Schemathesis against a running exporter on real data: no 5xx, every answer as documented."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok

from harness.servers import ExporterProcess, PrometheusServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exporter_url(
    prometheus: PrometheusServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An exporter process: schemathesis calls it over real HTTP from its own client."""
    variables = {
        "EXPORTER_PROMETHEUS_URL": prometheus.url,
        "EXPORTER_REFRESH_INTERVAL": "2",
        "EXPORTER_ON_DEMAND_PER_MINUTE": "600",
    }
    with ExporterProcess.start(tmp_path_factory.mktemp("fuzzed"), variables) as exporter:
        yield exporter.url


def test_every_answer_matches_the_schema_and_none_is_an_undocumented_5xx(exporter_url: str) -> None:
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
            # schema cannot state. Server errors are judged below. Every other check applies.
            response = case.call_and_validate(
                base_url=exporter_url,
                excluded_checks=[checks.positive_data_acceptance, checks.not_a_server_error],
            )
            if response.status_code == 503 and case.operation.path == "/health":
                # Documented: strict health of a critical gateway (e.g. at an instant
                # before any data, when the gateway is down).
                assert (case.query or {}).get("strict") in ("1", "true")
                assert response.json()["status"] == "critical"
                return
            assert response.status_code < 500

        answers_as_documented()
