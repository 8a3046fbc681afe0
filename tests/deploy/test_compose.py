"""docker-compose.yml and the Prometheus it starts, validated offline (no Docker engine).

Compose itself (Debian's docker-compose, against its bundled compose-spec schema) validates
and resolves the file; the tests then check the resolved services against each other: ports,
targets of the Dockerfile, files mounted, healthchecks and start order. promtool checks the
Prometheus configuration with the recording rules it loads.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from exporter import __version__
from exporter.catalog import load_catalog
from exporter.rules import render_rules, rule_set
from tests.deploy.conftest import ROOT, require_tool, run
from tests.deploy.test_container import parse_dockerfile

COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "rules" / "summary-exporter.rules.yml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "datasources.yml"
SERVICES = {"api", "prometheus", "summary-exporter", "grafana"}


def compose_config(**env: str) -> dict[str, Any]:
    """The file as Compose resolves it (variables substituted, paths absolute)."""
    binary = require_tool("docker-compose")
    environment = {k: v for k, v in os.environ.items() if k != "GATEWAY_IMAGE"} | env
    done = subprocess.run(
        [binary, "--project-directory", str(ROOT), "-f", str(COMPOSE), "config"],
        cwd=ROOT,
        env=environment,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    resolved: dict[str, Any] = compose_config()["services"]
    return resolved


def test_compose_file_validates() -> None:
    binary = require_tool("docker-compose")
    checked = run(binary, "-f", str(COMPOSE), "config", "-q")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == ""  # no warnings either (unset variables, deprecated keys)


def test_the_four_services_with_pinned_images(services: dict[str, Any]) -> None:
    assert set(services) == SERVICES
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: image {image} has no tag"
        assert "/" not in tag, f"{name}: image {image} has no tag"
        assert tag not in ("latest", ""), f"{name}: image {image} is not pinned"


def test_the_images_built_here_carry_the_package_version(services: dict[str, Any]) -> None:
    assert services["summary-exporter"]["image"] == f"summary-exporter:{__version__}"
    assert services["api"]["image"] == f"summary-exporter-demo-gateway:{__version__}"


def test_every_service_has_a_healthcheck_and_waits_for_healthy_dependencies(
    services: dict[str, Any],
) -> None:
    for name, service in services.items():
        assert service["healthcheck"]["test"][0] == "CMD", name
    assert services["prometheus"]["depends_on"] == {"api": {"condition": "service_healthy"}}
    assert services["summary-exporter"]["depends_on"] == {
        "prometheus": {"condition": "service_healthy"}
    }
    assert services["grafana"]["depends_on"] == {
        "prometheus": {"condition": "service_healthy"},
        "summary-exporter": {"condition": "service_healthy"},
    }
    # The exporter's own check: /readyz, served once the catalog is loaded.
    assert any("/readyz" in part for part in services["summary-exporter"]["healthcheck"]["test"])


def test_built_services_use_targets_of_the_dockerfile(services: dict[str, Any]) -> None:
    stages = {stage.name for stage in parse_dockerfile((ROOT / "Dockerfile").read_text())}
    for name in ("api", "summary-exporter"):
        build = services[name]["build"]
        assert Path(build["context"]) == ROOT, name
        assert build["target"] in stages, name


def test_the_gateway_image_is_replaceable_through_an_environment_variable() -> None:
    default = compose_config()["services"]["api"]["image"]
    assert default.startswith("summary-exporter-demo-gateway:")
    replaced = compose_config(GATEWAY_IMAGE="registry.example.com/gatewayz:1.4.2")
    assert replaced["services"]["api"]["image"] == "registry.example.com/gatewayz:1.4.2"


def test_mounted_files_exist(services: dict[str, Any]) -> None:
    sources = []
    for service in services.values():
        for volume in service.get("volumes", []):
            # Compose v1 prints the short syntax (SOURCE:TARGET[:MODE]), v2 the long one.
            source = volume.split(":")[0] if isinstance(volume, str) else volume["source"]
            if source.startswith("/"):  # a path on the host, not a named volume
                sources.append(source)
    assert len(sources) == 4  # Prometheus config and rules, Grafana provisioning and dashboards
    for source in sources:
        assert Path(source).exists(), source
        assert Path(source).is_relative_to(ROOT), source


def test_prometheus_config_is_valid_with_its_rules() -> None:
    promtool = require_tool("promtool")
    checked = run(promtool, "check", "config", str(PROMETHEUS_CONFIG))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 1 rule files found" in checked.stdout
    assert f"SUCCESS: {len(rule_set(load_catalog(), '5m').rules)} rules found" in checked.stdout


def test_prometheus_scrapes_the_api_and_the_exporter_where_compose_runs_them(
    services: dict[str, Any],
) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    exporter_port = services["summary-exporter"]["environment"].get("EXPORTER_PORT", "9199")
    assert targets == {"api:8000", f"summary-exporter:{exporter_port}"}
    published = {p["target"] for p in services["api"]["ports"]}
    assert 8000 in published
    # The exporter asks the compose Prometheus.
    upstream = urlsplit(services["summary-exporter"]["environment"]["EXPORTER_PROMETHEUS_URL"])
    assert (upstream.hostname, upstream.port) == ("prometheus", 9090)


def test_the_recording_rules_shipped_are_the_ones_the_catalog_generates(
    services: dict[str, Any],
) -> None:
    window = services["summary-exporter"]["environment"]["EXPORTER_WINDOW"]
    # Regenerate with: summary-exporter rules --window 5m > deploy/prometheus/rules/...
    assert RULES.read_text() == render_rules(load_catalog(), window)


def test_grafana_datasources_point_at_the_compose_services(services: dict[str, Any]) -> None:
    datasources = {ds["uid"]: ds for ds in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    assert datasources["prometheus"]["url"] == "http://prometheus:9090"
    exporter_port = services["summary-exporter"]["environment"].get("EXPORTER_PORT", "9199")
    assert datasources["summary-json"]["url"] == f"http://summary-exporter:{exporter_port}"
    plugins = services["grafana"]["environment"]["GF_INSTALL_PLUGINS"]
    plugin, version = plugins.split()
    assert plugin == datasources["summary-json"]["type"]
    assert version[0].isdigit()  # pinned
