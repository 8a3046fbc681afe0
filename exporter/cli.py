"""The `summary-exporter` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from exporter import __version__
from exporter.app import create_app
from exporter.catalog import load_catalog
from exporter.errors import CatalogError, SettingsError
from exporter.settings import Settings, load_settings

EXIT_CONFIG = 2


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
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # aiohttp's access log is one line per request; the exporter logs outcome changes only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def serve() -> int:
    try:
        settings = load_settings()
        catalog = load_catalog(settings.catalog)
    except (SettingsError, CatalogError) as error:
        print(f"summary-exporter: {error}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings)
    logging.getLogger("exporter").info(
        "event=start version=%s upstream=%s listen=%s:%d fields=%d window=%s interval=%gs",
        __version__,
        settings.upstream_display,
        settings.host,
        settings.port,
        len(catalog.fields()),
        settings.window,
        settings.refresh_interval,
    )
    web.run_app(
        create_app(settings, catalog),
        host=settings.host,
        port=settings.port,
        shutdown_timeout=settings.shutdown_grace,
        access_log=None,
        print=None,
    )
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="summary-exporter",
        description="Serve a five-domain summary of an AI API gateway, computed by PromQL.",
    )
    root.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = root.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("serve", help="run the service (settings from EXPORTER_* variables)")
    return root


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    if arguments.command == "serve":
        return serve()
    return EXIT_CONFIG  # unreachable: argparse rejects unknown commands
