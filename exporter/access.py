"""Who may read the endpoints: optional bearer or basic auth, and a CORS allow-list.

Both are off by default. The health probes stay open whatever is configured: an
orchestrator's probe carries no credentials.
"""

from __future__ import annotations

import base64
import hmac
import logging

from aiohttp import web
from aiohttp.typedefs import Middleware

from exporter.responses import Handler, json_response
from exporter.settings import Settings

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})

log = logging.getLogger("exporter.access")


def _same(given: str, expected: str) -> bool:
    # Constant time, so the comparison does not reveal how much of a guess was right.
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        username, separator, password = (
            base64.b64decode(encoded, validate=True).decode().partition(":")
        )
    except ValueError:  # not base64, or not UTF-8 once decoded
        return None
    return (username, password) if separator else None


class AccessGuard:
    """Checks the Authorization header against the configured token or username/password."""

    def __init__(self, settings: Settings) -> None:
        self._token = settings.auth_token.get_secret_value() if settings.auth_token else None
        self._user = settings.auth_username
        password = settings.auth_password
        self._password = password.get_secret_value() if password else None

    @property
    def enabled(self) -> bool:
        return self._token is not None or self._user is not None

    @property
    def challenge(self) -> str:
        return (
            'Bearer realm="summary-exporter"' if self._token else 'Basic realm="summary-exporter"'
        )

    def allows(self, header: str) -> bool:
        if self._token is not None:
            scheme, _, token = header.partition(" ")
            if scheme.lower() == "bearer" and _same(token, self._token):
                return True
        if self._user is not None and self._password is not None:
            pair = _basic_credentials(header)
            if pair is not None:
                # Both compared, always, so a wrong username costs as long as a wrong password.
                user_ok = _same(pair[0], self._user)
                password_ok = _same(pair[1], self._password)
                return user_ok and password_ok
        return False


def auth_middleware(guard: AccessGuard) -> Middleware:
    @web.middleware
    async def require_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS or request.method == "OPTIONS":
            return await handler(request)
        header = request.headers.get("Authorization", "")
        challenge = {"WWW-Authenticate": guard.challenge}
        if not header.isascii():
            # No credentials are ever written so (RFC 9110); aiohttp hands such bytes on as
            # characters that cannot even be compared.
            log.warning(
                "event=bad_request path=%.100r problem='Authorization is not ASCII'", request.path
            )
            error = "credentials required; the Authorization header is not ASCII"
            return json_response({"error": error}, status=401, headers=challenge)
        if not guard.allows(header):
            return json_response({"error": "credentials required"}, status=401, headers=challenge)
        return await handler(request)

    return require_auth


def cors_middleware(origins: frozenset[str]) -> Middleware:
    """Lets the listed browser origins (e.g. a Grafana) read the JSON endpoints."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is None or origin.rstrip("/") not in origins:
            return await handler(request)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, HEAD, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Authorization"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
        return response

    return cors


def cors_middlewares(settings: Settings) -> list[Middleware]:
    return [cors_middleware(settings.allowed_origins)] if settings.allowed_origins else []


def auth_middlewares(settings: Settings) -> list[Middleware]:
    guard = AccessGuard(settings)
    return [auth_middleware(guard)] if guard.enabled else []
