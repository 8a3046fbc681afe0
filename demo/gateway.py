"""A simulated Gatewayz AI API gateway, so the exporter has something real to summarise.

It serves ``GET /metrics`` as the real gateway does: the families its production code writes
(`demo.metrics`), filled by the traffic of `demo.simulation` (healthy most of the time, a short
incident every few minutes), in OpenMetrics when the scraper asks for it (with exemplars and
``_created`` series, as Prometheus asks by default) and in the Prometheus text format otherwise.

Run: ``python -m demo.gateway --host 127.0.0.1 --port 8000 [--seed 42]
[--incident-every 300] [--incident-length 60]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from demo.simulation import TICK_SECONDS, Simulation


def create_app(registry: CollectorRegistry, simulation: Simulation) -> web.Application:
    """The gateway's /metrics over `registry`; the simulation's clock is the caller's."""

    async def metrics(request: web.Request) -> web.Response:
        simulation.refresh_redis_gauges()  # the gateway reads Redis INFO before it answers
        encode, content_type = choose_encoder(request.headers.get("Accept", ""))
        return web.Response(body=encode(registry), headers={"Content-Type": content_type})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    return app


def run_in_real_time(app: web.Application, simulation: Simulation) -> None:
    """Advances the simulation with the wall clock while the app runs."""

    async def clock(_: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        started = loop.time()

        async def tick() -> None:
            while True:
                simulation.advance_to(loop.time() - started)
                await asyncio.sleep(TICK_SECONDS)

        task = asyncio.create_task(tick())
        yield
        task.cancel()  # on shutdown (SIGINT/SIGTERM via run_app) stop before the loop closes
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(clock)


def main() -> None:
    parser = argparse.ArgumentParser(description="Simulated Gatewayz AI API gateway (demo).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=None, help="repeatable traffic and incidents")
    parser.add_argument(
        "--incident-every",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="period of the incident cycle; the first incident starts at half of it",
    )
    parser.add_argument(
        "--incident-length",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the failing provider stays down (its breaker stays open at least 60 s)",
    )
    args = parser.parse_args()
    registry = CollectorRegistry()  # private: nothing global
    try:
        simulation = Simulation(registry, args.seed, args.incident_every, args.incident_length)
    except ValueError as error:
        parser.error(
            f"--incident-every {args.incident_every:g}, --incident-length "
            f"{args.incident_length:g}: {error}"
        )
    app = create_app(registry, simulation)
    run_in_real_time(app, simulation)
    first = simulation.schedule.incident(0)
    print(
        f"incidents every {args.incident_every:g} s, {args.incident_length:g} s long; the first"
        f" ({first.provider}) at {first.start:g} s",
        flush=True,
    )
    # run_app turns SIGINT and SIGTERM into a graceful shutdown that runs cleanup_ctx.
    web.run_app(app, host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
