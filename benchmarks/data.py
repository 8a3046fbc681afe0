"""The gateway's metrics around the present, scaled to N series, on a real Prometheus.

The background snapshot is evaluated now, so the data must cover now: this takes the busy
phase of tests/integration/dataset.py (every metric, counters growing, gauges set), moves it
to the present and multiplies it. Copy i adds a replica (`instance`) and, except on the
self-test series the catalog excludes, suffixes path, model, provider, table, endpoint and
cache name with `-i`: more routes, models and providers, as a larger gateway fleet has.
Copy i also carries more traffic than copy 0 (its counts times 1 + i / copies, its error
counts as they are), so that its providers and models differ from every other copy's in
requests and error rate, as a real gateway's do: no two copies tie exactly in a ranking.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Tier:
    """A Prometheus holding `series` series of the gateway."""

    series: int
    prometheus: PrometheusServer


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
    its sum of observations; other values (gauges, errors, `_created`) as they are."""
    if labels.get(_ERROR[0]) == _ERROR[1]:
        return value
    if name.endswith(_COUNTS):
        return float(round(value * factor))
    return value * factor if name.endswith("_sum") else value


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
    samples: list[Sample] = []
    for copy in range(copies):
        factor = 1 + copy / copies
        # One label dict per series and copy, shared by its points: 100,000 series x 41
        # points stay a few hundred MB in this process.
        labels_of: dict[tuple[tuple[str, str], ...], Mapping[str, str]] = {}
        for s, key in zip(base, keys, strict=True):
            labels = labels_of.get(key)
            if labels is None:
                labels = s.labels if copy == 0 else _copy_labels(s.labels, copy)
                labels_of[key] = labels
            value = s.value if copy == 0 else _copy_value(s.name, labels, s.value, factor)
            samples.append(Sample(s.name, labels, s.timestamp + shift, value))
    return samples, base_series * copies


def start_tier(series: int, workdir: Path, *, window_s: float, live_s: float) -> Tier:
    """Backfills a new Prometheus with the gateway at about `series` series and starts it."""
    # One step more than the window, so that the first refresh already sees a full window.
    samples, count = gateway_samples(series, history_s=window_s + 2 * dataset.STEP, live_s=live_s)
    return Tier(count, PrometheusServer.start(samples, workdir))
