"""The demo writes what the real gateway writes: same families, types, labels and buckets."""

from __future__ import annotations

import math

import pytest
from prometheus_client.metrics_core import Metric

from demo.simulation import normalise_path
from tests.demo.conftest import History
from tests.demo.gateway_families import NEVER_WRITTEN, WRITTEN, Family


def gateway_name(family: Metric) -> str:
    """The name the gateway's code gives the family (prometheus-client drops `_total`)."""
    return family.name + "_total" if family.type == "counter" else family.name


def as_exposed(family: Metric) -> Family:
    labels = {key for s in family.samples for key in s.labels if key not in ("le", "quantile")}
    bounds = {float(s.labels["le"]) for s in family.samples if "le" in s.labels}
    buckets = tuple(sorted(bound for bound in bounds if not math.isinf(bound)))
    return Family(family.type, tuple(sorted(labels)), buckets)


def expected(family: Family) -> Family:
    return Family(family.type, tuple(sorted(family.labels)), tuple(map(float, family.buckets)))


def test_every_family_the_demo_exposes_is_one_the_gateway_writes(ten_minutes: History) -> None:
    exposed = {gateway_name(family) for family in ten_minutes.registry.collect()}
    assert exposed - WRITTEN.keys() == set()
    assert exposed & NEVER_WRITTEN == set()


def test_each_family_has_the_gateways_type_labels_and_buckets(ten_minutes: History) -> None:
    exposed = {gateway_name(f): as_exposed(f) for f in ten_minutes.registry.collect()}
    assert exposed == {name: expected(WRITTEN[name]) for name in exposed}


def test_every_family_the_demo_defines_is_written_within_a_few_incidents(
    ten_minutes: History,
) -> None:
    # A family with HELP and TYPE but no sample is one the gateway would not show either.
    empty = [f.name for f in ten_minutes.registry.collect() if not f.samples]
    assert empty == []


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/v1/chat/sessions/48213", "/v1/chat/sessions/{id}"),
        ("/users/3f2b8c1e-9d4a-4e6b-8f00-1c2d3e4f5a6b/keys", "/users/{id}/keys"),
        ("/share/9f86d081884c7d65", "/share/{id}"),
        ("/share/deadbeef", "/share/deadbeef"),  # hexadecimal, but not longer than 8
        ("/v1/models/openai/gpt-4o-mini", "/v1/models/openai/gpt-4o-mini"),
        ("/a/b/c/d/e/f/g/h", "/a/b/c/d/e/f"),
        ("/", "/"),
        ("", "/"),
    ],
)
def test_request_paths_are_labelled_as_the_gateways_middleware_labels_them(
    path: str, label: str
) -> None:
    assert normalise_path(path) == label


def test_the_metrics_endpoint_itself_is_never_recorded(ten_minutes: History) -> None:
    paths = {s.labels["path"] for s in ten_minutes.samples("fastapi_requests_total")}
    assert "/metrics" not in paths
    assert "/v1/chat/sessions/{id}" in paths


def test_a_request_to_the_deleted_self_test_route_is_an_ordinary_404(
    ten_minutes: History,
) -> None:
    self_test = [
        s
        for s in ten_minutes.samples("fastapi_requests_total")
        if s.labels["path"] == "/api/metrics/test"
    ]
    assert {(s.labels["method"], s.labels["status_code"]) for s in self_test} == {("POST", "404")}
    providers = {
        s.labels["provider"] for s in ten_minutes.samples("model_inference_requests_total")
    }
    models = {s.labels["model"] for s in ten_minutes.samples("model_inference_requests_total")}
    assert "test" not in providers
    assert "test-model" not in models


def test_the_older_http_names_count_the_same_requests(ten_minutes: History) -> None:
    assert ten_minutes.total("http_requests_total") == ten_minutes.total("fastapi_requests_total")
    assert ten_minutes.total("http_request_duration_seconds_count") == ten_minutes.total(
        "fastapi_requests_duration_seconds_count"
    )
