"""The upstream as configured: credentials, TLS, extra headers, and failover across an HA pair.

Builds `PrometheusClient`s from the settings and puts them behind one `query()`; the rest of
the exporter never sees which upstream answered except through `QueryResult.upstream`.
"""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote, urlsplit

import aiohttp

from exporter.errors import (
    InvalidResponse,
    QueryRejected,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
)
from exporter.prometheus import (
    Credentials,
    PrometheusClient,
    QueryResult,
    RangeSeries,
    ReadBudget,
)
from exporter.settings import Settings, redact_url

log = logging.getLogger("exporter.upstream")

# Rejections that say "this server cannot answer now", not "this query is wrong".
_TRANSIENT_REASONS = frozenset({"unavailable", "timeout"})

T = TypeVar("T")


class BearerToken:
    def __init__(self, token: str) -> None:
        self._value = f"Bearer {token}"

    def authorization(self) -> str | None:
        return self._value


class BearerTokenFile:
    """A token read from a file, read again whenever the file changes (rotated secrets)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stamp: tuple[int, int] | None = None
        self._value: str | None = None

    def authorization(self) -> str | None:
        try:
            stat = self._path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                token = self._path.read_text(encoding="utf-8").strip()
                self._value = f"Bearer {token}" if token else None
                self._stamp = stamp
        except (OSError, UnicodeDecodeError) as error:
            # Keep the last good token: a rotation in progress must not drop authentication.
            log.warning(
                "event=token_file_unreadable path=%s error=%s", self._path, type(error).__name__
            )
        return self._value


class BasicAuth:
    def __init__(self, username: str, password: str) -> None:
        pair = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._value = f"Basic {pair}"

    def authorization(self) -> str | None:
        return self._value


def fails_over(error: UpstreamError) -> bool:
    """Whether another upstream may answer: never for errors of the query itself."""
    if isinstance(error, QueryRejected):
        return error.reason in _TRANSIENT_REASONS
    return isinstance(error, UpstreamUnreachable | UpstreamTimeout | InvalidResponse)


class FailoverClient:
    """Asks the upstream that answered last; on a transient failure, the next one in turn."""

    def __init__(self, clients: Sequence[PrometheusClient]) -> None:
        if not clients:
            raise ValueError("at least one upstream is needed")
        self._clients = list(clients)
        self._preferred = 0
        self.display_url = ", ".join(client.display_url for client in clients)

    async def query(self, promql: str, at: float, budget: ReadBudget) -> QueryResult:
        return await self._first_answer(lambda client: client.query(promql, at, budget))

    async def query_range(
        self, promql: str, start: float, end: float, step: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]:
        return await self._first_answer(
            lambda client: client.query_range(promql, start, end, step, budget)
        )

    async def query_samples(
        self, promql: str, at: float, budget: ReadBudget
    ) -> tuple[RangeSeries, ...]:
        return await self._first_answer(lambda client: client.query_samples(promql, at, budget))

    async def _first_answer(self, ask: Callable[[PrometheusClient], Awaitable[T]]) -> T:
        failure: UpstreamError | None = None
        for offset in range(len(self._clients)):
            index = (self._preferred + offset) % len(self._clients)
            try:
                result = await ask(self._clients[index])
            except UpstreamError as error:
                if not fails_over(error):
                    raise
                failure = error.detached()
                continue
            self._preferred = index
            return result
        assert failure is not None  # the loop ran at least once and every attempt failed
        raise failure


def credentials_from(settings: Settings) -> Credentials | None:
    if settings.bearer_token is not None:
        return BearerToken(settings.bearer_token.get_secret_value())
    if settings.bearer_token_file is not None:
        return BearerTokenFile(settings.bearer_token_file)
    if settings.basic_auth_username is not None:
        password = settings.basic_auth_password
        return BasicAuth(
            settings.basic_auth_username, password.get_secret_value() if password else ""
        )
    return None


def ssl_context_from(settings: Settings) -> ssl.SSLContext | bool:
    """The TLS setup for https upstreams; True means the system's default verification."""
    if settings.tls_insecure_skip_verify:
        return False
    if settings.tls_ca_file is None and settings.tls_cert_file is None:
        return True
    context = ssl.create_default_context(
        cafile=str(settings.tls_ca_file) if settings.tls_ca_file else None
    )
    if settings.tls_cert_file is not None:
        key = str(settings.tls_key_file) if settings.tls_key_file else None
        context.load_cert_chain(str(settings.tls_cert_file), key)
    return context


def session_for(settings: Settings) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(ssl=ssl_context_from(settings), limit=100)
    # trust_env=False: an HTTP(S)_PROXY meant for other traffic must not capture the upstream.
    return aiohttp.ClientSession(connector=connector, trust_env=False)


def upstream_for(settings: Settings, session: aiohttp.ClientSession) -> FailoverClient:
    credentials = credentials_from(settings)
    extra_form = (
        {}
        if settings.partial_response is None
        else {"partial_response": "true" if settings.partial_response else "false"}
    )
    clients = [
        PrometheusClient(
            session,
            redact_url(url),
            display_url=redact_url(url),
            timeout=settings.effective_query_timeout,
            max_response_bytes=settings.max_response_bytes,
            headers=settings.headers,
            # Credentials in a URL become basic auth for that upstream alone.
            credentials=_url_credentials(url) or credentials,
            extra_form=extra_form,
        )
        for url in settings.prometheus_urls
    ]
    return FailoverClient(clients)


def _url_credentials(url: str) -> BasicAuth | None:
    parts = urlsplit(url)
    if parts.username is None:
        return None
    return BasicAuth(unquote(parts.username), unquote(parts.password or ""))
