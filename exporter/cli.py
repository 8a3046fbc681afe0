"""The `summary-exporter` command."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter import __version__, check, doctor, server
from exporter.app import create_app, reload_catalog
from exporter.catalog import load_catalog
from exporter.durations import duration_argument
from exporter.environment import production_guard, read_environment, validate_env
from exporter.errors import CatalogError, SettingsError
from exporter.matchers import selector_argument
from exporter.rules import DEFAULT_INTERVAL, render_rules
from exporter.settings import ENV_PREFIX, Settings, default, load_settings

EXIT_CONFIG = 2
# A connection storm (every dashboard reloading at once) must not overflow the accept queue:
# a client dropped there waits for TCP's one-second retransmit, then times out. The kernel
# caps this at net.core.somaxconn.
LISTEN_BACKLOG = 1024


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log pipelines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "time=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
                datefmt="%Y-%m-%dT%H:%M:%S%z",
            )
        )
    handler.addFilter(server.ConnectionLog())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # aiohttp's access log is one line per request; the exporter logs outcome changes only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def serve() -> int:
    environment = read_environment()
    refusal = production_guard(environment)
    if refusal is not None:
        print(f"summary-exporter: {refusal}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        settings = load_settings()
        catalog = load_catalog(settings.catalog, settings.selector)
    except (SettingsError, CatalogError) as error:
        print(f"summary-exporter: {error}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        # Listening comes first, so that nothing has started when the address is taken.
        sockets = listening_sockets(settings.host, settings.port)
    except OSError as error:
        problem = listen_problem(error, settings)
        if problem is None:
            raise
        where = f"{settings.host}:{settings.port}"
        print(f"summary-exporter: cannot listen on {where}: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings)
    open_files = server.raise_open_files_limit()
    max_connections = server.connection_limit(settings.max_connections, open_files)
    logging.getLogger("exporter").info(
        "event=start version=%s upstream=%s listen=%s:%d fields=%d window=%s interval=%gs"
        " open_files=%d max_connections=%d",
        __version__,
        settings.upstream_display,
        settings.host,
        settings.port,
        len(catalog.fields()),
        settings.window,
        settings.refresh_interval,
        open_files,
        max_connections,
    )
    app = create_app(settings, catalog, environment)
    asyncio.run(
        server.serve(
            app,
            sockets,
            max_connections=max_connections,
            header_timeout=settings.header_timeout,
            shutdown_grace=settings.shutdown_grace,
            on_hangup=lambda: reload_catalog(app),
        )
    )
    return 0


def listening_sockets(host: str, port: int) -> list[socket.socket]:
    """A bound socket for each address `host` has (127.0.0.1 and ::1 for localhost)."""
    addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, _, _, _, address in addresses:
            sockets.append(socket.create_server(address, family=family, backlog=LISTEN_BACKLOG))
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def listen_problem(error: OSError, settings: Settings) -> str | None:
    """What the user must change when the server cannot listen, or None for another error."""
    if isinstance(error, socket.gaierror):
        return f"{ENV_PREFIX}HOST {settings.host!r} is not a name or address of this host"
    problems = {
        errno.EADDRINUSE: f"the port is in use; set {ENV_PREFIX}PORT to a free port",
        errno.EACCES: f"not allowed to use port {settings.port}; set {ENV_PREFIX}PORT above 1023",
        errno.EADDRNOTAVAIL: f"{ENV_PREFIX}HOST {settings.host!r} is not an address of this host",
    }
    return problems.get(error.errno) if error.errno is not None else None


def rules(
    window: str | None,
    catalog_path: Path | None,
    selector: str | None,
    interval: str,
    prometheus_rule: bool,
) -> int:
    """Prints recording rules for the catalog; defaults follow EXPORTER_WINDOW,
    EXPORTER_CATALOG and EXPORTER_SELECTOR, the rows of tables EXPORTER_MAX_ENTITIES and
    EXPORTER_TOP_MODELS."""
    try:
        settings = load_settings()
        window = window or settings.window
        catalog_path = catalog_path or settings.catalog
        catalog = load_catalog(catalog_path, settings.selector if selector is None else selector)
        source = str(catalog_path) if catalog_path else "the built-in catalog"
        text = render_rules(
            catalog,
            window,
            source,
            interval,
            prometheus_rule=prometheus_rule,
            limits=settings.table_limits,
        )
    except (SettingsError, CatalogError) as error:
        print(f"summary-exporter: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except ValueError as error:
        print(f"summary-exporter: invalid window: {error}", file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.write(text)
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="summary-exporter",
        description="Serve a five-domain summary of an AI API gateway, computed by PromQL.",
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the service (settings from EXPORTER_* variables)")
    rules_command = commands.add_parser(
        "rules", help="print Prometheus recording rules computing the same fields (YAML)"
    )
    rules_command.add_argument(
        "--window",
        help="summary window, a Prometheus duration (default: $EXPORTER_WINDOW or"
        f" {default('window')})",
    )
    rules_command.add_argument(
        "--catalog", type=Path, help="catalog file (default: $EXPORTER_CATALOG or the built-in)"
    )
    rules_command.add_argument(
        "--interval",
        type=duration_argument,
        default=DEFAULT_INTERVAL,
        help="how often Prometheus evaluates the rules, a Prometheus duration (default:"
        f" {DEFAULT_INTERVAL}); keep it under EXPORTER_RECORDED_MAX_AGE",
    )
    rules_command.add_argument(
        "--selector",
        type=selector_argument,
        help='label matchers for the gateway\'s series, e.g. job="gatewayz-api-production"'
        " (default: $EXPORTER_SELECTOR)",
    )
    rules_command.add_argument(
        "--prometheus-rule",
        action="store_true",
        help="print a prometheus-operator PrometheusRule holding the rules instead of a rule file",
    )
    validate_command = commands.add_parser(
        "validate-env",
        help="pre-deployment check: exit 0 only for APP_ENV=production with test mode off",
    )
    validate_command.add_argument("--json", action="store_true", help="print JSON")
    check.add_arguments(
        commands.add_parser(
            "check",
            help="print the gateway's state and checks; exit 0 ok, 1 degraded, 2 critical,"
            " 3 no answer",
        )
    )
    doctor.add_arguments(
        commands.add_parser(
            "doctor",
            help="which fields the upstream can fill, with the settings of serve; exit 0 all,"
            " 1 some cannot, 2 usage error, 3 upstream unreachable",
        )
    )
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.command == "serve":
        return serve()
    if arguments.command == "rules":
        return rules(
            arguments.window,
            arguments.catalog,
            arguments.selector,
            arguments.interval,
            arguments.prometheus_rule,
        )
    if arguments.command == "validate-env":
        return validate_env(as_json=arguments.json)
    if arguments.command == "check":
        return check.run(arguments)
    if arguments.command == "doctor":
        return doctor.run(arguments)
    return EXIT_CONFIG  # unreachable: argparse rejects unknown commands
