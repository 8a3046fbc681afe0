"""The HTTP service: the summary as JSON, the gauges for Prometheus, and health probes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from exporter.access import auth_middlewares, cors_middlewares
from exporter.catalog import Catalog
from exporter.catalog_file import CatalogFile
from exporter.collector import (
    CatalogCollector,
    EnvironmentCollector,
    RefreshMetrics,
    SummaryCollector,
)
from exporter.durations import parse_duration
from exporter.environment import Environment, about, read_environment
from exporter.errors import InvalidRequest
from exporter.health import Health, Status, assess, liveness
from exporter.openapi import openapi_document
from exporter.page import Page, render_page
from exporter.parameters import parse_flag, parse_time, parse_window, single
from exporter.recorded import recorded_rules
from exporter.refresher import Evaluator, OnDemand, OnDemandBudget, Refresher, grid_instant
from exporter.responses import JSON, Handler, answering, json_response, no_route
from exporter.settings import Settings, redact_url
from exporter.snapshot import Snapshot, explain
from exporter.sparklines import Sparklines
from exporter.upstream import session_for, upstream_for

SUMMARY_PARAMETERS = frozenset({"window", "time", "explain"})
HEALTH_PARAMETERS = frozenset({"window", "time", "strict"})
PAGE_PARAMETERS = frozenset({"window", "time"})


@dataclass
class Services:
    """What the handlers read; built when the app starts, since the HTTP session needs a loop."""

    refresher: Refresher
    on_demand: OnDemand
    registry: CollectorRegistry
    metrics_handler: Handler


SETTINGS = web.AppKey("settings", Settings)
# The catalog in force; each snapshot carries the one it was evaluated with.
CATALOG = web.AppKey("catalog", CatalogFile)
SERVICES = web.AppKey("services", Services)
# What every document says about this process, built once: it never changes while it runs.
ABOUT = web.AppKey("about", dict[str, Any])
OPENAPI = web.AppKey("openapi", dict[str, Any])
ENVIRONMENT = web.AppKey("environment", Environment)
SPARKLINES = web.AppKey("sparklines", Sparklines)


async def _snapshot_for(
    request: web.Request, accepted: frozenset[str] = SUMMARY_PARAMETERS | {"category"}
) -> Snapshot:
    """The background snapshot, or an on-demand one when the request names a window or time."""
    unknown = set(request.query) - accepted
    if unknown:
        # `category` is the gateway path's own filter, checked by its handler.
        shown = ", ".join(sorted(accepted - {"category"}))
        raise InvalidRequest(f"unknown parameters {sorted(unknown)}; accepted: {shown}")
    settings, services = request.app[SETTINGS], request.app[SERVICES]
    window_text, time_text = single(request.query, "window"), single(request.query, "time")
    refresher = services.refresher
    window = (
        refresher.window if window_text is None else parse_window(window_text, settings.max_window)
    )
    now = time.time()
    if time_text is None and parse_duration(window) == settings.window_ms:
        current = refresher.current
        if current is None:
            raise web.HTTPServiceUnavailable(
                reason="the first refresh has not finished yet; retry", headers={"Retry-After": "1"}
            )
        # The default window spelled another way (300s for 5m) is still the same snapshot.
        return current if current.window == window else replace(current, window=window)
    at = grid_instant(now, refresher.interval) if time_text is None else parse_time(time_text, now)
    return await services.on_demand.get(at, window)


def said_with(snapshot: Snapshot, about: dict[str, Any]) -> dict[str, Any]:
    """What a summary document says besides its fields: the process (`about`) and whether the
    gateway itself is up (`liveness`), which is the same for the whole life of a snapshot."""
    return about | {"liveness": liveness(snapshot.catalog, snapshot).document()}


def _background(request: web.Request, domains: list[str] | None) -> web.Response | None:
    """Nearly every request: the background snapshot, with no parameter to read. None when a
    request has parameters or comes before the first refresh."""
    app = request.app
    current = app[SERVICES].refresher.current
    if current is None or request.rel_url.raw_query_string:
        return None
    about = app[ABOUT]
    body = current.encode(time.time(), domains, lambda: said_with(current, about))
    return web.Response(body=body, content_type=JSON)


async def _summary(request: web.Request, domains: list[str] | None) -> web.Response:
    explained = _flag(request, "explain")
    snapshot = await _snapshot_for(request)
    facts = said_with(snapshot, request.app[ABOUT])
    if explained:
        # Per field, the PromQL and instant to paste into Prometheus; built per request.
        document = snapshot.document(time.time(), domains, facts)
        document["explain"] = explain(snapshot.catalog, snapshot, domains)
        return json_response(document)
    body = snapshot.encode(time.time(), domains, lambda: facts)
    return web.Response(body=body, content_type=JSON)


def _flag(request: web.Request, name: str) -> bool:
    return parse_flag(name, single(request.query, name))


async def _snapshot_or_none(request: web.Request, accepted: frozenset[str]) -> Snapshot | None:
    """As for the summary, but None before the first refresh: health and the page answer."""
    try:
        return await _snapshot_for(request, accepted)
    except web.HTTPServiceUnavailable:
        return None


def _health(request: web.Request, snapshot: Snapshot | None, now: float) -> Health:
    # A snapshot asked for at a past instant is judged as of that instant, not as aged since.
    as_of = snapshot.instant if snapshot and snapshot.source == "on_demand" else now
    return assess(
        request.app[CATALOG].catalog if snapshot is None else snapshot.catalog,
        snapshot,
        request.app[ENVIRONMENT],
        as_of=as_of,
        max_staleness=request.app[SETTINGS].effective_max_staleness,
    )


async def health(request: web.Request) -> web.Response:
    """Checks for people: always 200 with the status, or 503 when critical with `strict`."""
    strict = _flag(request, "strict")
    snapshot = await _snapshot_or_none(request, HEALTH_PARAMETERS)
    result = _health(request, snapshot, time.time())
    status = 503 if strict and result.status is Status.CRITICAL else 200
    return json_response(result.document() | request.app[ABOUT], status=status)


async def status_page(request: web.Request) -> web.Response:
    snapshot = await _snapshot_or_none(request, PAGE_PARAMETERS)
    now = time.time()
    settings = request.app[SETTINGS]
    sparklines = (
        ()
        if snapshot is None
        else await request.app[SPARKLINES].get(snapshot.catalog, snapshot.instant, snapshot.window)
    )
    page = Page(
        catalog=request.app[CATALOG].catalog if snapshot is None else snapshot.catalog,
        snapshot=snapshot,
        health=_health(request, snapshot, now),
        sparklines=sparklines,
        environment=request.app[ENVIRONMENT],
        now=now,
        refresh_seconds=None if "time" in request.query else settings.refresh_interval,
        prometheus_url=redact_url(settings.prometheus_urls[0]),
    )
    return web.Response(
        text=render_page(page), content_type="text/html", headers={"Cache-Control": "no-store"}
    )


async def summary(request: web.Request) -> web.Response:
    # Handlers answer from the background snapshot before they read the query: parsing one
    # costs microseconds, which nearly every request, having none, is spared.
    if (answer := _background(request, None)) is not None:
        return answer
    if "category" in request.query:
        raise InvalidRequest("unknown parameters ['category']; use /summary/{domain}")
    return await _summary(request, None)


async def summary_domain(request: web.Request) -> web.Response:
    domain = request.match_info["domain"]
    if domain not in request.app[CATALOG].catalog.domains:
        raise web.HTTPNotFound(reason=f"unknown domain {domain[:40]!r}; known: {_domains(request)}")
    if (answer := _background(request, [domain])) is not None:
        return answer
    return await _summary(request, [domain])


async def gateway_summary(request: web.Request) -> web.Response:
    """The gateway's original path, with its `?category=<domain>` filter."""
    if (answer := _background(request, None)) is not None:
        return answer
    category = single(request.query, "category")
    if category is not None and category not in request.app[CATALOG].catalog.domains:
        raise InvalidRequest(f"unknown category {category[:40]!r}; known: {_domains(request)}")
    return await _summary(request, None if category is None else [category])


def reload_catalog(app: web.Application) -> None:
    """Reads the catalog file again (SIGHUP); an invalid one leaves the catalog as it was."""
    app[CATALOG].reload()


def _domains(request: web.Request) -> str:
    return ", ".join(request.app[CATALOG].catalog.domains)


async def metrics(request: web.Request) -> web.StreamResponse:
    return await request.app[SERVICES].metrics_handler(request)


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def openapi(request: web.Request) -> web.Response:
    return json_response(request.app[OPENAPI])


async def readyz(request: web.Request) -> web.Response:
    # Never depends on the upstream: a failing sidecar probe would take the whole pod out.
    fields = len(request.app[CATALOG].catalog.fields())
    return json_response({"status": "ready", "catalog_fields": fields})


async def _upstream(app: web.Application) -> AsyncIterator[None]:
    settings, catalog_file = app[SETTINGS], app[CATALOG]
    catalog = catalog_file.catalog
    async with session_for(settings) as session:
        client = upstream_for(settings, session)
        evaluator = Evaluator(
            catalog,
            client,
            max_concurrency=settings.max_concurrent_queries,
            limits=settings.table_limits,
            max_bytes=settings.max_refresh_bytes,
            recorded=recorded_rules(settings, client),
        )
        # An app-owned registry, never the global one: two apps in one process stay apart.
        # Its collectors describe nothing (the catalog decides the names), and `name[]` filters
        # their samples.
        registry = CollectorRegistry(auto_describe=False, support_collectors_without_names=True)
        refresh_metrics = RefreshMetrics()
        refresher = Refresher(
            evaluator,
            window=settings.window,
            interval=settings.refresh_interval,
            max_staleness=settings.effective_max_staleness,
            on_refresh=refresh_metrics.observe,
        )
        registry.register(refresh_metrics)
        registry.register(SummaryCollector(catalog, refresher))
        registry.register(EnvironmentCollector(app[ENVIRONMENT]))
        registry.register(CatalogCollector(catalog_file))
        budget = OnDemandBudget(settings.on_demand_per_minute)
        app[SPARKLINES] = Sparklines(
            client,
            retry_after=settings.refresh_interval,
            max_bytes=settings.max_refresh_bytes,
            admit=budget.spend,
        )
        on_demand = OnDemand(
            evaluator,
            cache_size=settings.on_demand_cache_size,
            max_concurrent=settings.max_concurrent_on_demand,
            budget=budget,
        )
        app[SERVICES] = Services(
            refresher=refresher,
            on_demand=on_demand,
            registry=registry,
            metrics_handler=make_aiohttp_handler(registry),
        )

        def reloaded(catalog: Catalog) -> None:
            # Every evaluation from now on, the next refresh's included, is of the new catalog.
            evaluator.catalog = catalog
            on_demand.forget()
            app[SPARKLINES].forget()
            app[OPENAPI].clear()
            app[OPENAPI].update(openapi_document(catalog))

        catalog_file.on_change(reloaded)
        loop_task = asyncio.create_task(refresher.run(), name="refresher")
        yield
        loop_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop_task


def create_app(
    settings: Settings, catalog: Catalog, environment: Environment | None = None
) -> web.Application:
    """The service; SIGHUP reloads its catalog through `reload_catalog(app)`."""
    # CORS outermost so that an allowed browser origin can read error answers too. Neither is
    # on by default, and then no middleware runs at all: handlers answer their own errors.
    app = web.Application(middlewares=[*cors_middlewares(settings), *auth_middlewares(settings)])
    app[SETTINGS] = settings
    app[CATALOG] = CatalogFile(catalog, settings.catalog)
    # Updated in place when the catalog is reloaded (the application's state is frozen).
    app[OPENAPI] = openapi_document(catalog)
    app[ENVIRONMENT] = environment or read_environment()
    app[ABOUT] = about(app[ENVIRONMENT])
    app.cleanup_ctx.append(_upstream)
    for path, handler in (
        ("/summary", summary),
        ("/summary/{domain}", summary_domain),
        ("/prometheus/metrics/summary", gateway_summary),
        ("/metrics", metrics),
        ("/healthz", healthz),
        ("/readyz", readyz),
        ("/openapi.json", openapi),
        ("/health", health),
        ("/", status_page),
    ):
        app.router.add_get(path, answering(handler))
    app.router.add_route("*", "/{path:.*}", answering(no_route))
    return app
