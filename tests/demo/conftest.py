"""A simulated gateway history, shared by the demo's tests."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.samples import Sample

from demo.simulation import Simulation

# Short cycles so that a few minutes of simulated time hold several incidents.
INCIDENT_EVERY, INCIDENT_LENGTH = 120.0, 20.0


@dataclass
class History:
    registry: CollectorRegistry
    simulation: Simulation

    def samples(self, name: str) -> list[Sample]:
        return [s for family in self.registry.collect() for s in family.samples if s.name == name]

    def value(self, name: str, **labels: str) -> float | None:
        """The sample's value, or None when it has no such series (as Prometheus would)."""
        return self.registry.get_sample_value(name, labels)

    def total(self, name: str, **match: str) -> float:
        """Sum of the series of `name` whose labels include `match`."""
        return sum(
            s.value
            for s in self.samples(name)
            if all(s.labels.get(key) == value for key, value in match.items())
        )


def simulate(
    seed: int, until: float, every: float = INCIDENT_EVERY, length: float = INCIDENT_LENGTH
) -> History:
    registry = CollectorRegistry()
    simulation = Simulation(registry, seed, every, length)
    simulation.advance_to(until)
    return History(registry, simulation)


@pytest.fixture(scope="session")
def ten_minutes() -> History:
    """Ten simulated minutes, five incidents: every family has been written by the end."""
    return simulate(seed=11, until=600.0)
