"""Reading the catalog file again: a valid one replaces the catalog, an invalid one does not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from exporter.catalog import Catalog, load_catalog
from exporter.catalog_file import CatalogFile
from tests.conftest import write_catalog_with


@pytest.fixture
def catalog_path(tmp_path: Path) -> Path:
    path = tmp_path / "catalog.yaml"
    write_catalog_with(path, "probe", "vector(1)")
    return path


def test_a_valid_file_replaces_the_catalog_and_tells_the_listeners(catalog_path: Path) -> None:
    now = [100.0]
    source = CatalogFile(load_catalog(catalog_path), catalog_path, clock=lambda: now[0])
    told: list[Catalog] = []
    source.on_change(told.append)
    write_catalog_with(catalog_path, "probe_renamed", "vector(2)")
    now[0] = 160.0
    assert source.reload() is True
    assert "probe_renamed" in source.catalog.domains["http"].fields
    assert "probe" not in source.catalog.domains["http"].fields
    assert told == [source.catalog]
    assert (source.last_reload_succeeded, source.loaded_at) == (True, 160.0)


def test_an_invalid_file_keeps_the_catalog_in_force_and_logs_why(
    catalog_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = load_catalog(catalog_path)
    source = CatalogFile(catalog, catalog_path, clock=lambda: 100.0)
    told: list[Catalog] = []
    source.on_change(told.append)
    catalog_path.write_text("domains: {}\n")
    with caplog.at_level(logging.ERROR, logger="exporter.catalog"):
        assert source.reload() is False
    assert source.catalog is catalog
    assert told == []
    assert (source.last_reload_succeeded, source.loaded_at) == (False, 100.0)
    [line] = [record.getMessage() for record in caplog.records]
    assert line.startswith("event=catalog_reload_failed keeping=previous error=")
    assert str(catalog_path) in line


def test_a_reloaded_catalog_keeps_the_selector(catalog_path: Path) -> None:
    selector = 'job="gatewayz-api-production"'
    source = CatalogFile(load_catalog(catalog_path, selector), catalog_path)
    write_catalog_with(catalog_path, "probe_renamed", "vector(2)")
    assert source.reload() is True
    assert source.catalog.selector == selector
    requests = source.catalog.field("http.total_requests")
    assert requests is not None
    assert selector in requests.render("5m")
