"""The catalog in force, and its file, read again on SIGHUP the way Prometheus reloads its
configuration: a valid file replaces the catalog for every evaluation from then on (the
background snapshot's at its next refresh); an invalid one leaves the catalog as it was and
says why, in the log and in summary_exporter_catalog_reload_success.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from exporter.catalog import Catalog, load_catalog
from exporter.errors import CatalogError

log = logging.getLogger("exporter.catalog")


class CatalogFile:
    """The catalog in force (`catalog`), where it comes from, and how its last reload went."""

    def __init__(
        self, catalog: Catalog, path: Path | None, clock: Callable[[], float] = time.time
    ) -> None:
        self.catalog = catalog
        self.path = path
        self._clock = clock
        self.last_reload_succeeded = True
        self.loaded_at = clock()  # when the catalog in force was read
        self._listeners: list[Callable[[Catalog], None]] = []

    @property
    def source(self) -> str:
        return "the built-in catalog" if self.path is None else str(self.path)

    def on_change(self, listener: Callable[[Catalog], None]) -> None:
        """`listener` is given each catalog that replaces the one in force."""
        self._listeners.append(listener)

    def reload(self) -> bool:
        """Reads the file again; a valid catalog replaces the one in force."""
        try:
            # Bound to the same EXPORTER_SELECTOR: settings are read once, at start.
            catalog = load_catalog(self.path, self.catalog.selector)
        except CatalogError as error:
            self.last_reload_succeeded = False
            log.error("event=catalog_reload_failed keeping=previous error=%r", str(error))
            return False
        self.catalog, self.loaded_at = catalog, self._clock()
        self.last_reload_succeeded = True
        for listener in self._listeners:
            listener(catalog)
        log.info(
            "event=catalog_reloaded source=%s fields=%d (the next refresh uses it)",
            self.source,
            len(catalog.fields()),
        )
        return True
