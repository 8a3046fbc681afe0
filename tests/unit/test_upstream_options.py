"""How the exporter reaches its upstreams: HA failover, credentials, headers, TLS, prefixes."""

from __future__ import annotations

import base64
import logging
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from exporter.catalog import Catalog
from tests.exporter_client import answer_every_field, body, service, started
from tests.fake_prometheus import FakePrometheus


@pytest.fixture
async def second_prometheus() -> AsyncIterator[FakePrometheus]:
    fake = await FakePrometheus().start()
    yield fake
    await fake.close()


async def test_an_unavailable_first_upstream_fails_over_to_the_second(
    start_exporter: Any,
    fake_prometheus: FakePrometheus,
    second_prometheus: FakePrometheus,
    catalog: Catalog,
) -> None:
    fake_prometheus.error = (503, "unavailable", "shutting down")
    answer_every_field(second_prometheus, catalog, "5")
    urls = f"{fake_prometheus.url},{second_prometheus.url}"
    client = await started(start_exporter, urls)
    document = await body(await client.get("/summary"))
    assert document["metrics"]["http"]["total_requests"] == 5
    assert document["upstream"]["answered_by"] == [second_prometheus.url]
    metrics = await (await client.get("/metrics")).text()
    assert (
        f'summary_exporter_upstream_answers_total{{upstream="{second_prometheus.url}"}}' in metrics
    )


async def test_after_failing_over_the_answering_upstream_is_asked_first(
    start_exporter: Any, second_prometheus: FakePrometheus, catalog: Catalog
) -> None:
    answer_every_field(second_prometheus, catalog)
    client = await started(start_exporter, f"http://127.0.0.1:9,{second_prometheus.url}")
    asked = len(second_prometheus.asked)
    await service(client).refresher.refresh_once()
    document = await body(await client.get("/summary"))
    assert document["upstream"]["answered_by"] == [second_prometheus.url]
    assert len(second_prometheus.asked) == 2 * asked


async def test_a_broken_query_does_not_fail_over(
    start_exporter: Any,
    fake_prometheus: FakePrometheus,
    second_prometheus: FakePrometheus,
) -> None:
    fake_prometheus.error = (400, "bad_data", "parse error")
    client = await started(start_exporter, f"{fake_prometheus.url},{second_prometheus.url}")
    document = await body(await client.get("/summary"))
    assert "bad_data: parse error" in document["nulls"]["http.total_requests"]
    assert second_prometheus.asked == []


async def test_bearer_token_extra_headers_and_partial_response_are_sent(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    await started(
        start_exporter,
        fake_prometheus.url + "/prometheus",
        bearer_token="t0ken",
        headers={"X-Scope-OrgID": "tenant-1"},
        partial_response=False,
    )
    request = fake_prometheus.requests[0]
    assert request["Authorization"] == "Bearer t0ken"
    assert request["X-Scope-OrgID"] == "tenant-1"
    assert request["partial_response"] == "false"


async def test_basic_auth_is_sent(start_exporter: Any, fake_prometheus: FakePrometheus) -> None:
    await started(
        start_exporter, fake_prometheus.url, basic_auth_username="ann", basic_auth_password="pw"
    )
    expected = "Basic " + base64.b64encode(b"ann:pw").decode()
    assert fake_prometheus.requests[0]["Authorization"] == expected


async def test_a_token_file_is_read_again_when_it_changes(
    start_exporter: Any, fake_prometheus: FakePrometheus, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    client = await started(start_exporter, fake_prometheus.url, bearer_token_file=token_file)
    assert fake_prometheus.requests[-1]["Authorization"] == "Bearer first"
    token_file.write_text("second-and-longer\n")
    await service(client).refresher.refresh_once()
    assert fake_prometheus.requests[-1]["Authorization"] == "Bearer second-and-longer"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl is part of every Debian system)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.fixture
async def https_prometheus(
    certificate: tuple[Path, Path], catalog: Catalog
) -> AsyncIterator[tuple[str, FakePrometheus]]:
    fake = FakePrometheus()
    answer_every_field(fake, catalog, "9")
    app = web.Application()
    app.router.add_post("/api/v1/query", fake._query)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"https://127.0.0.1:{port}", fake
    await runner.cleanup()


async def test_tls_upstream_is_verified_against_the_given_ca(
    start_exporter: Any,
    https_prometheus: tuple[str, FakePrometheus],
    certificate: tuple[Path, Path],
) -> None:
    url, _ = https_prometheus
    trusted = await started(start_exporter, url, tls_ca_file=certificate[0])
    assert (await body(await trusted.get("/summary")))["metrics"]["http"]["total_requests"] == 9
    untrusted = await started(start_exporter, url)
    reason = (await body(await untrusted.get("/summary")))["nulls"]["http.total_requests"]
    assert "cannot connect" in reason
    skipping = await started(start_exporter, url, tls_insecure_skip_verify=True)
    assert (await body(await skipping.get("/summary")))["metrics"]["http"]["total_requests"] == 9


async def test_secrets_never_appear_in_documents_metrics_pages_or_logs(
    start_exporter: Any,
    fake_prometheus: FakePrometheus,
    catalog: Catalog,
    caplog: pytest.LogCaptureFixture,
) -> None:
    secrets = ["url-pass-SECRET-1", "header-SECRET-2", "endpoint-SECRET-3", "token-SECRET-4"]
    host = fake_prometheus.url.removeprefix("http://")
    answer_every_field(fake_prometheus, catalog)
    with caplog.at_level(logging.DEBUG):
        client = await started(
            start_exporter,
            f"http://127.0.0.1:9,http://admin:{secrets[0]}@{host}",
            headers={"X-Api-Key": secrets[1]},
            auth_token=secrets[2],
        )
        fake_prometheus.error = (400, "bad_data", "parse error")
        await service(client).refresher.refresh_once()
        await started(start_exporter, fake_prometheus.url, bearer_token=secrets[3])
        headers = {"Authorization": f"Bearer {secrets[2]}"}
        outputs = [
            await (await client.get(path, headers=headers)).text()
            for path in (
                "/summary",
                "/summary?window=1h&explain=1",
                "/metrics",
                "/prometheus/metrics/summary",
                "/health",
                "/",
                "/openapi.json",
            )
        ]
        outputs.append(await (await client.get("/summary")).text())  # the 401 body
    outputs.append(caplog.text)
    assert "event=query_failed" in caplog.text
    sent = {request["Authorization"] for request in fake_prometheus.requests}
    assert f"Bearer {secrets[3]}" in sent  # the token did reach the upstream
    for secret in secrets:
        for output in outputs:
            assert secret not in output


async def test_credentials_in_the_url_are_sent_as_basic_auth_and_never_shown(
    start_exporter: Any, fake_prometheus: FakePrometheus
) -> None:
    host = fake_prometheus.url.removeprefix("http://")
    client = await started(start_exporter, f"http://ann:p%40ss@{host}")
    expected = "Basic " + base64.b64encode(b"ann:p@ss").decode()
    assert fake_prometheus.requests[0]["Authorization"] == expected
    document = await body(await client.get("/summary"))
    assert document["upstream"]["url"] == fake_prometheus.url


async def test_a_client_certificate_is_presented_when_the_upstream_requires_one(
    start_exporter: Any, certificate: tuple[Path, Path], catalog: Catalog
) -> None:
    fake = FakePrometheus()
    answer_every_field(fake, catalog, "4")
    app = web.Application()
    app.router.add_post("/api/v1/query", fake._query)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(certificate[0]))
    context.load_cert_chain(*certificate)
    context.verify_mode = ssl.CERT_REQUIRED
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    try:
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"https://127.0.0.1:{port}"
        cert, key = certificate
        with_cert = await started(
            start_exporter, url, tls_ca_file=cert, tls_cert_file=cert, tls_key_file=key
        )
        document = await body(await with_cert.get("/summary"))
        assert document["metrics"]["http"]["total_requests"] == 4
        without = await started(start_exporter, url, tls_ca_file=cert)
        assert (await body(await without.get("/summary")))["upstream"]["up"] is False
    finally:
        await runner.cleanup()
