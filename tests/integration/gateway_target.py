"""A stand-in for the gateway's /metrics on loopback, for live scrapes: its HTTP metrics, with
the gateway's names, labels and buckets, counting ten requests a second until it is stopped.

    python -m tests.integration.gateway_target --port 8000
"""

from __future__ import annotations

import argparse
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

ROUTE = {"app_name": "gatewayz", "method": "POST", "path": "/v1/chat/completions"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    registry = CollectorRegistry()
    requests = Counter(
        "fastapi_requests_total", "Total FastAPI requests",
        ["app_name", "method", "path", "status_code", "status_class"], registry=registry,
    )  # fmt: skip
    durations = Histogram(
        "fastapi_requests_duration_seconds", "FastAPI request duration in seconds",
        ["app_name", "method", "path"], registry=registry,
        buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )  # fmt: skip
    in_progress = Gauge(
        "fastapi_requests_in_progress", "Number of HTTP requests currently being processed",
        ["app_name", "method", "path"], registry=registry,
    )  # fmt: skip
    in_progress.labels(**ROUTE).set(0)
    start_http_server(port, addr="127.0.0.1", registry=registry)
    while True:
        requests.labels(**ROUTE, status_code="200", status_class="2xx").inc()
        durations.labels(**ROUTE).observe(0.2)
        time.sleep(0.1)


if __name__ == "__main__":
    main()
