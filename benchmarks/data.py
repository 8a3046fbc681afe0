"""The gateway's metrics around the present, scaled to N series, on a real Prometheus.

The background snapshot is evaluated now, so the data must cover now: this takes the busy
phase of tests/integration/dataset.py (every metric, counters growing, gauges set), moves it
to the present and multiplies it. Copy i adds a replica (`instance`) and, except on the
self-test series the catalog excludes, suffixes path, model, provider, table, endpoint and
cache name with `-i`: more routes, models and providers, as a larger gateway fleet has.
Copy i also carries more traffic than copy 0 (its counts times 1 + i / copies, its error
counts as they are), has inference errors where copy 0 has only successes and successes where
it has only errors (i / copies times the counts, a tenth of that for errors), and its circuit
breakers closed but in one copy of OPEN_EVERY, and its replicas' event loop lag times the
same factor: its providers, models and replicas differ from every other copy's in requests,
error rate, health and lag, as a real gateway's do, and no two copies tie exactly in a
ranking.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from harness.servers import PrometheusServer, Sample
from tests.integration import dataset

# Label values the catalog excludes (the gateway's self-test series): kept as they are, so
# that every copy stays excluded and no copy changes what the queries read.
_EXCLUDED = {"provider": "test", "model": "test-model", "path": "/api/metrics/test"}
_IDENTITY_LABELS = ("path", "model", "provider", "table", "endpoint", "cache_name")
# Series whose values count events: a copy's traffic scales them (but its errors).
_COUNTS = ("_total", "_count", "_bucket")
_ERROR = ("status", "error")
_INFERENCE = ("model_inference_requests_total", "model_inference_requests_created")
_OTHER_STATUS = {"success": "error", "error": "success"}
_BREAKER = "circuit_breaker_current_state"
OPEN_EVERY = 20  # one copy in so many keeps its breakers as copy 0 has them
_LAG = "gatewayz_event_loop_lag_seconds"  # a replica's own, which grows with its traffic
WINDOW_S = 300.0  # the shipped EXPORTER_WINDOW, 5m


def _copy_labels(labels: Mapping[str, str], copy: int) -> dict[str, str]:
    varied = {
        key: value
        if key not in _IDENTITY_LABELS or _EXCLUDED.get(key) == value
        else f"{value}-{copy}"
        for key, value in labels.items()
    }
    varied["instance"] = f"{labels.get('instance', 'gw')}-{copy}"
    return varied


def _copy_value(name: str, labels: Mapping[str, str], value: float, factor: float) -> float:
    """A count of copy i's traffic (integer, still growing, buckets still cumulative) or
    its sum of observations, a breaker's state; other values (gauges, errors, `_created`) as
    they are."""
    if name == _BREAKER:
        return 1.0 if labels.get("state") == "closed" else 0.0
    if name == _LAG:
        return value * factor
    if labels.get(_ERROR[0]) == _ERROR[1]:
        return value
    if name.endswith(_COUNTS):
        return float(round(value * factor))
    return value * factor if name.endswith("_sum") else value


def _other_status(base: list[Sample]) -> list[Sample]:
    """The inference series of the status copy 0 does not have beside one it has (provider,
    model and replica): copy 0's values, which a copy scales down."""
    present = {(s.name, tuple(sorted(s.labels.items()))) for s in base}
    others = []
    for s in base:
        status = s.labels.get("status", "")
        if s.name not in _INFERENCE or status not in _OTHER_STATUS:
            continue
        labels = {**s.labels, "status": _OTHER_STATUS[status]}
        if (s.name, tuple(sorted(labels.items()))) not in present:
            others.append(Sample(s.name, labels, s.timestamp, s.value))
    return others


def _other_status_value(sample: Sample, share: float) -> float:
    if not sample.name.endswith("_total"):
        return sample.value
    errors = sample.labels.get(_ERROR[0]) == _ERROR[1]
    return float(round(sample.value * share / (10 if errors else 1)))


def gateway_samples(series: int, *, history_s: float, live_s: float) -> tuple[list[Sample], int]:
    """About `series` series, from `history_s` before now to `live_s` after it, and their count.

    Samples after now are read by no query until their time comes: they keep the data current
    for as long as a benchmark runs on it, without a scraper.
    """
    span = history_s + live_s
    if span > dataset.BUSY_AT - dataset.START:
        raise ValueError(f"{span} s of data asked; the dataset's busy phase is shorter")
    base = [
        s for s in dataset.samples() if dataset.BUSY_AT - span <= s.timestamp <= dataset.BUSY_AT
    ]
    base_series = len({(s.name, tuple(sorted(s.labels.items()))) for s in base})
    copies = max(1, round(series / base_series))
    # The dataset's steps fall on its 15 s grid; keep them on the same grid of the present.
    end = (int(time.time() + live_s) // dataset.STEP + 1) * dataset.STEP
    shift = end - dataset.BUSY_AT
    keys = [tuple(sorted(s.labels.items())) for s in base]
    others = _other_status(base)
    other_keys = [tuple(sorted(s.labels.items())) for s in others]
    other_series = len({(s.name, key) for s, key in zip(others, other_keys, strict=True)})
    samples: list[Sample] = []
    for copy in range(copies):
        factor, share = 1 + copy / copies, copy / copies
        # One label dict per series and copy, shared by its points: 100,000 series x 41
        # points stay a few hundred MB in this process.
        labels_of: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
        for s, key in zip(base, keys, strict=True):
            labels = labels_of.get(key)
            if labels is None:
                labels = s.labels if copy == 0 else _copy_labels(s.labels, copy)
                labels_of[key] = labels
            value = s.value
            if copy and (s.name != _BREAKER or copy % OPEN_EVERY):
                value = _copy_value(s.name, labels, s.value, factor)
            samples.append(Sample(s.name, labels, s.timestamp + shift, value))
        if copy == 0:
            continue
        for s, key in zip(others, other_keys, strict=True):
            labels = labels_of.get(key) or labels_of.setdefault(key, _copy_labels(s.labels, copy))
            value = _other_status_value(s, share)
            samples.append(Sample(s.name, labels, s.timestamp + shift, value))
    return samples, base_series * copies + other_series * (copies - 1)


def start_tier(series: int, workdir: Path, live_s: float) -> tuple[int, PrometheusServer]:
    """A new Prometheus backfilled with the gateway at about `series` series, and their count."""
    # One step more than the window, so that the first refresh already sees a full window.
    samples, count = gateway_samples(series, history_s=WINDOW_S + 2 * dataset.STEP, live_s=live_s)
    return count, PrometheusServer.start(samples, workdir)
