"""Optional protection of the endpoints: bearer or basic auth, and CORS for browsers."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import pytest

from tests.exporter_client import body, started
from tests.fake_prometheus import FakePrometheus

PROTECTED = ["/summary", "/summary/http", "/prometheus/metrics/summary", "/metrics"]


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.mark.parametrize("path", PROTECTED)
async def test_a_configured_token_is_required_on_the_data_endpoints(
    path: str, start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url, auth_token="s3cret")
    refused = await client.get(path)
    assert refused.status == 401
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await body(refused))["error"] == "credentials required"
    wrong = await client.get(path, headers={"Authorization": "Bearer s3cre"})
    assert wrong.status == 401
    allowed = await client.get(path, headers={"Authorization": "Bearer s3cret"})
    assert allowed.status == 200


async def test_health_probes_stay_open_when_auth_is_on(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url, auth_token="s3cret")
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/readyz")).status == 200


async def test_basic_auth_needs_both_username_and_password(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(
        start_exporter, fake_prometheus.url, auth_username="grafana", auth_password="pw"
    )
    assert (await client.get("/summary", headers=basic("grafana", "pw"))).status == 200
    assert (await client.get("/summary", headers=basic("grafana", "px"))).status == 401
    assert (await client.get("/summary", headers=basic("other", "pw"))).status == 401
    garbage = {"Authorization": "Basic !!!not-base64"}
    assert (await client.get("/summary", headers=garbage)).status == 401


async def test_endpoints_are_open_by_default(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(start_exporter, fake_prometheus.url)
    assert (await client.get("/summary")).status == 200


async def test_an_allowed_origin_gets_cors_headers_and_preflight(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(
        start_exporter,
        fake_prometheus.url,
        cors_origins="https://grafana.example, http://localhost:3000/",
        auth_token="s3cret",
    )
    origin = {"Origin": "http://localhost:3000"}
    preflight = await client.options(
        "/summary", headers=origin | {"Access-Control-Request-Method": "GET"}
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    answer = await client.get("/summary", headers=origin | {"Authorization": "Bearer s3cret"})
    assert answer.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    refused = await client.get("/summary", headers=origin)
    assert refused.status == 401
    assert refused.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"


async def test_other_origins_get_no_cors_headers(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(
        start_exporter, fake_prometheus.url, cors_origins="https://grafana.example"
    )
    answer = await client.get("/summary", headers={"Origin": "https://evil.example"})
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


async def raw_get(client: Any, path: str, header: bytes) -> bytes:
    """The answer to a GET with `header` sent as raw bytes, as no HTTP client library would."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + header)
    writer.write(b"\r\n\r\n")
    answer = await reader.read()
    writer.close()
    return answer


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"Authorization: Bearer \xff\xfe", id="bearer-not-utf8"),
        pytest.param(b"Authorization: Bearer s3cr\xc3\xa9t", id="bearer-not-ascii"),
        pytest.param(b"Authorization: Basic \xc3\xa9", id="basic-not-ascii"),
    ],
)
async def test_a_non_ascii_authorization_is_a_401_in_json_and_one_warning_line(
    header: bytes,
    start_exporter: Any,
    fake_prometheus: FakePrometheus,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await started(
        start_exporter, fake_prometheus.url, auth_username="grafana", auth_password="pw"
    )
    with caplog.at_level(logging.WARNING):
        answer = await raw_get(client, "/summary", header)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert b"Content-Type: application/json" in head
    assert json.loads(payload) == {
        "error": "credentials required; the Authorization header is not ASCII"
    }
    assert [(r.levelname, r.exc_info) for r in caplog.records] == [("WARNING", None)]
    assert "event=bad_request" in caplog.records[0].getMessage()


async def test_basic_credentials_that_are_not_utf8_once_decoded_are_refused(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    client = await started(
        start_exporter, fake_prometheus.url, auth_username="grafana", auth_password="pw"
    )
    not_utf8 = {"Authorization": "Basic " + base64.b64encode(b"grafana:\xff").decode()}
    assert (await client.get("/summary", headers=not_utf8)).status == 401
