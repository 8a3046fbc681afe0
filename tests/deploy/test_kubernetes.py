"""The kustomize base in deploy/kubernetes, rendered and validated offline (no cluster).

`kubectl kustomize` renders it as `kubectl apply -k` would; kubernetes-validate checks every
built-in kind against the Kubernetes OpenAPI schemas in strict mode (unknown fields fail). The
PodMonitor is a prometheus-operator CRD with no bundled schema: its required fields and its
references to the pod are checked here by hand. The exporter's probes must point at paths a
running exporter answers with 200, on the port the container names.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from exporter import __version__
from exporter.catalog import load_catalog, parse_catalog
from exporter.rules import render_rules
from exporter.settings import ENV_PREFIX, Settings, load_settings
from tests.deploy.conftest import ROOT, require_tool, run

BASE = ROOT / "deploy" / "kubernetes"
# The oldest and the newest Kubernetes schema kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
EXPORTER = "summary-exporter"

# prometheus-operator's PodMonitor (monitoring.coreos.com/v1): the fields used or allowed here.
_PODMONITOR_SPEC = {
    "selector",
    "podMetricsEndpoints",
    "namespaceSelector",
    "jobLabel",
    "podTargetLabels",
    "sampleLimit",
    "targetLimit",
}
_POD_METRICS_ENDPOINT = {
    "port",
    "path",
    "interval",
    "scrapeTimeout",
    "scheme",
    "honorLabels",
    "honorTimestamps",
    "relabelings",
    "metricRelabelings",
    "params",
}


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    kubectl = require_tool("kubectl")
    rendered = run(kubectl, "kustomize", str(BASE))
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [doc for doc in manifests if doc["kind"] == kind]
    return found


def config_maps(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in manifests if doc["kind"] == "ConfigMap"}


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    [found] = [c for c in containers if c["name"] == name]
    return found


def test_the_base_renders_the_expected_objects(manifests: list[dict[str, Any]]) -> None:
    kinds = sorted(doc["kind"] for doc in manifests)
    assert kinds == [
        "ConfigMap", "ConfigMap", "Deployment", "PodMonitor", "PrometheusRule", "Secret", "Service",
    ]  # fmt: skip


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_built_in_kinds_validate_strictly_against_the_kubernetes_schemas(
    manifests: list[dict[str, Any]], version: str
) -> None:
    for doc in manifests:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # a CRD: checked by hand below
        kubernetes_validate.validate(doc, version, strict=True)


def test_the_podmonitor_has_its_required_fields_and_selects_the_pods(
    manifests: list[dict[str, Any]],
) -> None:
    monitor = one(manifests, "PodMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) == {"apiVersion", "kind", "metadata", "spec"}
    assert monitor["metadata"]["name"]
    spec = monitor["spec"]
    assert set(spec) <= _PODMONITOR_SPEC
    assert {"selector", "podMetricsEndpoints"} <= set(spec)
    deployment = one(manifests, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= pod_labels.items()
    port_names = {
        port["name"]
        for c in deployment["spec"]["template"]["spec"]["containers"]
        for port in c["ports"]
    }
    endpoints = spec["podMetricsEndpoints"]
    for endpoint in endpoints:
        assert set(endpoint) <= _POD_METRICS_ENDPOINT
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
    # The gateway's raw metrics and the exporter's gauges are both scraped.
    assert {endpoint["port"] for endpoint in endpoints} == {"http", "metrics"}


def test_the_prometheus_rule_is_what_the_rules_command_prints_for_the_sidecars_settings(
    manifests: list[dict[str, Any]],
) -> None:
    env = _exporter_env(manifests)
    window = env[f"{ENV_PREFIX}WINDOW"]
    shipped = (BASE / "prometheusrule.yaml").read_text()
    # Regenerate with: summary-exporter rules --prometheus-rule --window 5m > deploy/kubernetes/...
    assert shipped == render_rules(load_catalog(), window, prometheus_rule=True)
    rule = one(manifests, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(rule) == {"apiVersion", "kind", "metadata", "spec"}
    assert set(rule["spec"]) == {"groups"}
    # The sidecars read what it records: the same window, no selector on either side.
    assert env.get(f"{ENV_PREFIX}RECORDED_RULES", "auto") != "off"
    assert f"{ENV_PREFIX}SELECTOR" not in env
    [group] = rule["spec"]["groups"]
    assert group["name"] == f"summary-exporter-{window}"


def test_the_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    rule = yaml.safe_load((BASE / "prometheusrule.yaml").read_text())
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    checked = run(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_probes_point_at_paths_the_exporter_serves_on_its_named_port(
    manifests: list[dict[str, Any]], start_exporter: Any
) -> None:
    exporter = container(one(manifests, "Deployment"), EXPORTER)
    liveness = exporter["livenessProbe"]["httpGet"]
    readiness = exporter["readinessProbe"]["httpGet"]
    assert (liveness["path"], readiness["path"]) == ("/healthz", "/readyz")
    [port] = exporter["ports"]
    assert liveness["port"] == readiness["port"] == port["name"] == "metrics"
    env = _exporter_env(manifests)
    assert port["containerPort"] == int(env.get(f"{ENV_PREFIX}PORT", Settings().port))
    # Neither probe may depend on the upstream: here it is a port nothing listens on.
    client = await start_exporter("http://127.0.0.1:9")
    for path in (liveness["path"], readiness["path"]):
        response = await client.get(path)
        assert response.status == 200, path


def test_the_exporter_runs_unprivileged_on_a_read_only_root_with_limits(
    manifests: list[dict[str, Any]],
) -> None:
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for c in pod["containers"]:
        security = c["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, c["name"]
        assert security["allowPrivilegeEscalation"] is False, c["name"]
        assert security["capabilities"]["drop"] == ["ALL"], c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), c["name"]
        assert {"cpu", "memory"} <= set(c["resources"]["limits"]), c["name"]
    images = {c["name"]: c["image"] for c in pod["containers"]}
    assert images == {
        "gateway": f"summary-exporter-demo-gateway:{__version__}",
        EXPORTER: f"summary-exporter:{__version__}",
    }


def test_settings_come_from_a_config_map_and_a_secret_and_are_valid(
    manifests: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    exporter = container(one(manifests, "Deployment"), EXPORTER)
    sources = exporter["envFrom"]
    assert [next(iter(source)) for source in sources] == ["configMapRef", "secretRef"]
    env = _exporter_env(manifests)
    settings_fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert set(env) <= settings_fields, set(env) - settings_fields
    assert f"{ENV_PREFIX}PROMETHEUS_URL" in _secret_values(manifests)
    # The environment as the container gets it, read by the exporter's own loader (the
    # catalog path exists only in the pod: it is checked below).
    for key in [key for key in os.environ if key.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(key)
    for key, value in (env | _secret_values(manifests)).items():
        if key != f"{ENV_PREFIX}CATALOG":
            monkeypatch.setenv(key, value)
    settings = load_settings()
    assert settings.window == env[f"{ENV_PREFIX}WINDOW"]


def test_the_catalog_is_mounted_from_a_config_map_where_the_settings_look(
    manifests: list[dict[str, Any]], tmp_path: Path
) -> None:
    deployment = one(manifests, "Deployment")
    exporter = container(deployment, EXPORTER)
    catalog_path = Path(_exporter_env(manifests)[f"{ENV_PREFIX}CATALOG"])
    [mount] = [m for m in exporter["volumeMounts"] if Path(m["mountPath"]) == catalog_path.parent]
    assert mount["readOnly"] is True
    [volume] = [
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    ]
    catalog_map = config_maps(manifests)[volume["configMap"]["name"]]
    text = catalog_map["data"][catalog_path.name]
    # The same catalog as the built-in one, and a valid one.
    assert text == (ROOT / "exporter" / "catalog.yaml").read_text()
    parse_catalog(text, "the ConfigMap")


def test_the_service_exposes_the_named_ports_of_the_pod(manifests: list[dict[str, Any]]) -> None:
    service = one(manifests, "Service")
    deployment = one(manifests, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    port_names = {
        port["name"]
        for c in deployment["spec"]["template"]["spec"]["containers"]
        for port in c["ports"]
    }
    assert {port["targetPort"] for port in service["spec"]["ports"]} == port_names


def _exporter_env(manifests: list[dict[str, Any]]) -> dict[str, str]:
    exporter = container(one(manifests, "Deployment"), EXPORTER)
    [reference] = [s["configMapRef"]["name"] for s in exporter["envFrom"] if "configMapRef" in s]
    data: dict[str, str] = config_maps(manifests)[reference]["data"]
    return data


def _secret_values(manifests: list[dict[str, Any]]) -> dict[str, str]:
    exporter = container(one(manifests, "Deployment"), EXPORTER)
    [reference] = [s["secretRef"]["name"] for s in exporter["envFrom"] if "secretRef" in s]
    [secret] = [
        doc for doc in manifests if doc["kind"] == "Secret" and doc["metadata"]["name"] == reference
    ]
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
